"""Configuration of the Time Jump AutoEncoder (TJAE) whose pooled latent is the `mood` embedding."""

from __future__ import annotations

from transformers import PretrainedConfig


class TJAEConfig(PretrainedConfig):
    """Dilated (optionally causal) convolutional autoencoder over log-mel frames.

    `time_jumps` passes each encoder layer's feature map to the matching decoder layer through a narrow
    `jump_size` bottleneck; `jump_dropout` drops whole jumps while training so the latent must carry the
    content (the skips alone cannot rebuild the input).

    `pooling` turns the latent (frames, latent_size) into the embedding: "mean" (its time average,
    latent_size values) or "mean_std" (average and standard deviation, 2 * latent_size values). The
    standard deviation mostly tracks the singer's spectral spread, i.e. timbre; the mean follows what is
    sung, so "mean" keeps the embedding from repeating the timbre embedding.
    """

    model_type = "voicerec-tjae"

    def __init__(
        self,
        sampling_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int = 160,
        n_mels: int = 80,
        f_min: float = 40.0,
        f_max: float = 8000.0,
        hidden_size: int = 128,
        layer_dilations: list[int] | None = None,
        kernel_size: int = 2,
        latent_size: int = 32,
        time_jumps: bool = True,
        jump_size: int = 8,
        jump_dropout: float = 0.5,
        causal: bool = True,
        pooling: str = "mean",
        **kwargs,
    ) -> None:
        if pooling not in ("mean", "mean_std"):
            raise ValueError(f"pooling must be 'mean' or 'mean_std', got {pooling!r}")
        self.sampling_rate = sampling_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.f_min = f_min
        self.f_max = f_max
        self.hidden_size = hidden_size
        self.layer_dilations = list(layer_dilations) if layer_dilations is not None else [1, 2, 4, 8, 16, 32]
        self.kernel_size = kernel_size
        self.latent_size = latent_size
        self.time_jumps = time_jumps
        self.jump_size = jump_size
        self.jump_dropout = jump_dropout
        self.causal = causal
        self.pooling = pooling
        super().__init__(**kwargs)

    @property
    def embedding_size(self) -> int:
        return self.latent_size if self.pooling == "mean" else 2 * self.latent_size
