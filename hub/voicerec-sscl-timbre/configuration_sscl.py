"""Configuration of the SSCL singing-voice encoder (one class for the timbre and expression checkpoints)."""

from __future__ import annotations

from transformers import PretrainedConfig


class SSCLConfig(PretrainedConfig):
    """Log-mel front end + a dilated residual TDNN + attentive statistics pooling.

    `variant` records which contrastive policy trained the weights: "timbre" (time-stretch is a positive)
    or "expression" (time-stretch is a negative). The architecture is the same for both.

    `input_normalization` says what is removed from each clip's log-mel before the network: "per_band" removes
    its mean spectrum (cepstral mean normalisation: cancels a microphone's colouring, but also the long-term
    vocal-tract envelope, the strongest singer cue), "level" only its overall loudness (one number), so the
    mean spectrum reaches the network and channel robustness is left to the training augmentations.
    """

    model_type = "voicerec-sscl"

    def __init__(
        self,
        variant: str = "timbre",
        sampling_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int = 160,
        n_mels: int = 80,
        f_min: float = 40.0,
        f_max: float = 8000.0,
        hidden_size: int = 256,
        block_dilations: list[int] | None = None,
        kernel_size: int = 3,
        attention_channels: int = 64,
        embedding_size: int = 192,
        input_normalization: str = "per_band",
        **kwargs,
    ) -> None:
        if variant not in ("timbre", "expression"):
            raise ValueError(f"variant must be 'timbre' or 'expression', got {variant!r}")
        if input_normalization not in ("per_band", "level"):
            raise ValueError(f"input_normalization must be 'per_band' or 'level', got {input_normalization!r}")
        self.variant = variant
        self.sampling_rate = sampling_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.f_min = f_min
        self.f_max = f_max
        self.hidden_size = hidden_size
        self.block_dilations = list(block_dilations) if block_dilations is not None else [2, 3, 4]
        self.kernel_size = kernel_size
        self.attention_channels = attention_channels
        self.embedding_size = embedding_size
        self.input_normalization = input_normalization
        super().__init__(**kwargs)
