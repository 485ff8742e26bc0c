"""Configuration of the GE2E voice encoder (Wan et al., 2018) and the singing encoders fine-tuned from it."""

from __future__ import annotations

from transformers import PretrainedConfig

VARIANTS = ("speaker", "timbre", "expression")


class GE2EConfig(PretrainedConfig):
    """A 3-layer LSTM over 1.6 s windows of a 40-band mel power spectrogram; the last hidden state, projected and
    rectified, is a window's embedding, and a clip's is the normalised mean over its windows.

    `variant` says what trained the weights: "speaker" is GE2E as Resemblyzer ships it (speech, thousands of
    speakers); "timbre" and "expression" are that network fine-tuned on singing with MoCo, a time-stretched copy
    being a positive for "timbre" and a negative for "expression". `windows_per_second` and `min_coverage` place
    the windows as Resemblyzer's `embed_utterance` does (1.3 windows a second: half-overlapping windows).
    """

    model_type = "voicerec-ge2e"

    def __init__(
        self,
        variant: str = "speaker",
        sampling_rate: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        n_mels: int = 40,
        hidden_size: int = 256,
        num_layers: int = 3,
        embedding_size: int = 256,
        window_frames: int = 160,
        windows_per_second: float = 1.3,
        min_coverage: float = 0.75,
        target_dbfs: float = -30.0,
        **kwargs,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        self.sampling_rate = sampling_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding_size = embedding_size
        self.window_frames = window_frames
        self.windows_per_second = windows_per_second
        self.min_coverage = min_coverage
        self.target_dbfs = target_dbfs
        super().__init__(**kwargs)
