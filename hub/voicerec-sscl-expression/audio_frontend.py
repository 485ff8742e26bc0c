"""Log-mel front end shared by the voicerec encoders.

It lives inside the model (not the feature extractor) so that a checkpoint always carries the exact
spectrogram it was trained on; the window and mel filters are persistent buffers for the same reason.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.audio_utils import mel_filter_bank


class LogMelFrontend(nn.Module):
    """Waveform (batch, samples) -> log-mel (batch, n_mels, frames) and a frame mask."""

    def __init__(
        self, sampling_rate: int, n_fft: int, hop_length: int, n_mels: int, f_min: float, f_max: float
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=True)
        filters = mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1,
            num_mel_filters=n_mels,
            min_frequency=f_min,
            max_frequency=f_max,
            sampling_rate=sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("mel_filters", torch.from_numpy(filters.T.copy()).float(), persistent=True)

    def frame_mask(self, attention_mask: torch.Tensor | None, batch: int, frames: int, device) -> torch.Tensor:
        """Which frames hold real audio: a frame is valid when its centre lies inside the unpadded signal."""
        if attention_mask is None:
            return torch.ones(batch, frames, dtype=torch.bool, device=device)
        lengths = attention_mask.long().sum(-1)
        valid = lengths // self.hop_length + 1
        return torch.arange(frames, device=device)[None, :] < valid[:, None]

    def forward(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if input_values.dim() == 1:
            input_values = input_values[None]
        if attention_mask is not None:
            input_values = input_values * attention_mask.to(input_values.dtype)
        spec = torch.stft(
            input_values.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",  # zeros, as batch padding gives: a clip embeds the same alone or batched
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel_filters, power)
        logmel = torch.log(mel + 1e-6)
        mask = self.frame_mask(attention_mask, logmel.shape[0], logmel.shape[-1], logmel.device)
        return logmel, mask


def masked_mean_std(x: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of x (batch, channels, frames) over valid frames only."""
    m = mask[:, None, :].to(x.dtype)
    count = m.sum(dim, keepdim=True).clamp_min(1.0)
    mean = (x * m).sum(dim, keepdim=True) / count
    var = ((x - mean).square() * m).sum(dim, keepdim=True) / count
    return mean, var.clamp_min(1e-8).sqrt()
