"""SSCL singing-voice encoder: a waveform in, one unit-length voice embedding out.

Trained with MoCo/InfoNCE (see `training/train_sscl.py`); the timbre and timbre+expression checkpoints
share this architecture and differ only in the contrastive policy that trained them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .audio_frontend import LogMelFrontend, masked_mean_std
from .configuration_sscl import SSCLConfig


@dataclass
class SSCLOutput(ModelOutput):
    """`embeddings` are L2-normalised and centred (batch, embedding_size); `pooled` is the raw projection (what
    training sees); `last_hidden_state` is (batch, frames, hidden)."""

    embeddings: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


class SSCLResBlock(nn.Module):
    """Two dilated convolutions with a residual path: context grows without losing frame resolution."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=pad)
        self.norm1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=pad)
        self.norm2 = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x))) * keep
        h = self.norm2(self.conv2(h))
        return F.relu(x + h) * keep


class AttentiveStatsPooling(nn.Module):
    """Weighted mean and std over valid frames; the weights let sustained vowels outweigh transients."""

    def __init__(self, channels: int, attention_channels: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv1d(channels * 3, attention_channels, 1),
            nn.Tanh(),
            nn.Conv1d(attention_channels, channels, 1),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mean, std = masked_mean_std(x, mask)
        context = torch.cat([x, mean.expand_as(x), std.expand_as(x)], dim=1)
        scores = self.attention(context).masked_fill(~mask[:, None, :], float("-inf"))
        w = torch.softmax(scores, dim=-1)
        mu = (w * x).sum(-1)
        sigma = ((w * x.square()).sum(-1) - mu.square()).clamp_min(1e-8).sqrt()
        return torch.cat([mu, sigma], dim=-1)


class SSCLPreTrainedModel(PreTrainedModel):
    config_class = SSCLConfig
    base_model_prefix = "sscl"
    main_input_name = "input_values"

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's own initialisation suits ReLU convnets better than transformers' N(0, 0.02).
        if isinstance(module, (nn.Conv1d, nn.Linear, nn.BatchNorm1d)):
            module.reset_parameters()


class SSCLModel(SSCLPreTrainedModel):
    def __init__(self, config: SSCLConfig) -> None:
        super().__init__(config)
        self.frontend = LogMelFrontend(
            config.sampling_rate, config.n_fft, config.hop_length, config.n_mels, config.f_min, config.f_max
        )
        c = config.hidden_size
        self.input_conv = nn.Conv1d(config.n_mels, c, 5, padding=2)
        self.input_norm = nn.BatchNorm1d(c)
        self.blocks = nn.ModuleList(SSCLResBlock(c, config.kernel_size, d) for d in config.block_dilations)
        self.merge = nn.Conv1d(c * len(config.block_dilations), c, 1)
        self.pooling = AttentiveStatsPooling(c, config.attention_channels)
        self.projection = nn.Linear(2 * c, config.embedding_size)
        # the training clips' mean unit embedding: contrastive training leaves every clip sharing a common
        # direction; subtracting it spreads the cosines (zeros = no centring, as in checkpoints without it)
        self.register_buffer("embedding_center", torch.zeros(config.embedding_size), persistent=True)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is self:  # a checkpoint saved before the buffer existed: no centring
            self.embedding_center.zero_()

    @torch.no_grad()
    def fit_embedding_center(self, input_values: list[torch.Tensor], groups: list[str] | None = None) -> torch.Tensor:
        """Set `embedding_center` to the mean unit embedding (before centring) of these 1-D waveforms.

        With `groups` (e.g. the singer of each clip) it is the mean of the group means, so that a singer with many
        recordings does not pull the centre towards their own voice.
        """
        units = torch.stack([F.normalize(self(audio[None]).pooled[0], dim=-1) for audio in input_values])
        if groups is not None:
            if len(groups) != len(units):
                raise ValueError(f"Got {len(groups)} groups for {len(units)} clips.")
            units = torch.stack([units[[i for i, g in enumerate(groups) if g == name]].mean(0) for name in set(groups)])
        self.embedding_center.copy_(units.mean(0))
        return self.embedding_center

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SSCLOutput | tuple:
        logmel, mask = self.frontend(input_values, attention_mask)
        mean, _ = masked_mean_std(logmel, mask)  # (batch, n_mels, 1): the clip's mean spectrum
        if self.config.input_normalization == "level":
            mean = mean.mean(dim=1, keepdim=True)  # loudness only: the spectrum's shape stays
        x = (logmel - mean) * mask[:, None, :]
        keep = mask[:, None, :].to(x.dtype)  # padded frames stay zero so they never leak into real ones
        h = F.relu(self.input_norm(self.input_conv(x))) * keep
        outs = []
        for block in self.blocks:
            h = block(h, keep)
            outs.append(h)
        h = F.relu(self.merge(torch.cat(outs, dim=1))) * keep
        pooled = self.projection(self.pooling(h, mask))
        embeddings = F.normalize(F.normalize(pooled, dim=-1) - self.embedding_center, dim=-1)
        out = SSCLOutput(embeddings=embeddings, pooled=pooled, last_hidden_state=h.transpose(1, 2))
        return out if return_dict is not False else out.to_tuple()
