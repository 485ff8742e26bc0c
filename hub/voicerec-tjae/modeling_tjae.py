"""Time Jump AutoEncoder (TJAE): the `mood` embedding is its latent, pooled over time.

Encoder and decoder are stacks of gated dilated convolutions (WaveNet-style, causal by default), each
layer with its own dilation. Each encoder layer passes its feature map to the matching decoder layer (a
"time jump") so the decoder rebuilds the log-mel input from several time scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .audio_frontend import LogMelFrontend, masked_mean_std
from .configuration_tjae import TJAEConfig


@dataclass
class TJAEOutput(ModelOutput):
    """`embeddings`: unit-length mood vectors (batch, config.embedding_size); `latent`: (batch, frames, latent_size)."""

    loss: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    latent: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    target: torch.Tensor | None = None
    frame_mask: torch.Tensor | None = None


class GatedDilatedConv(nn.Module):
    """tanh * sigmoid gated dilated convolution with a residual path; causal pads only on the left."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, causal: bool) -> None:
        super().__init__()
        total = dilation * (kernel_size - 1)
        self.pad = (total, 0) if causal else (total // 2, total - total // 2)
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, dilation=dilation)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.conv(F.pad(x, self.pad)).chunk(2, dim=1)
        return x + self.out(torch.tanh(f) * torch.sigmoid(g))


class TJAEPreTrainedModel(PreTrainedModel):
    config_class = TJAEConfig
    base_model_prefix = "tjae"
    main_input_name = "input_values"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            module.reset_parameters()


class TJAEModel(TJAEPreTrainedModel):
    def __init__(self, config: TJAEConfig) -> None:
        super().__init__(config)
        self.frontend = LogMelFrontend(
            config.sampling_rate, config.n_fft, config.hop_length, config.n_mels, config.f_min, config.f_max
        )
        c, k = config.hidden_size, config.kernel_size
        self.encoder_in = nn.Conv1d(config.n_mels, c, 1)
        self.encoder = nn.ModuleList(GatedDilatedConv(c, k, d, config.causal) for d in config.layer_dilations)
        self.to_latent = nn.Conv1d(c, config.latent_size, 1)
        self.from_latent = nn.Conv1d(config.latent_size, c, 1)
        self.decoder = nn.ModuleList(GatedDilatedConv(c, k, d, config.causal) for d in reversed(config.layer_dilations))
        if config.time_jumps:
            self.jumps = nn.ModuleList(
                nn.Sequential(nn.Conv1d(c, config.jump_size, 1), nn.Conv1d(config.jump_size, c, 1))
                for _ in config.layer_dilations
            )
        self.decoder_out = nn.Conv1d(c, config.n_mels, 1)
        # the training set's mean pooled latent: every clip shares a large common component, which would leave
        # all cosine similarities near 1; subtracting it spreads them (set by `fit_embedding_center`)
        self.register_buffer("embedding_center", torch.zeros(config.embedding_size), persistent=True)
        self.post_init()

    def normalized_logmel(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel with per-clip mean and variance removed: the reconstruction target."""
        logmel, mask = self.frontend(input_values, attention_mask)
        mean, std = masked_mean_std(logmel, mask)
        return ((logmel - mean) / std) * mask[:, None, :], mask

    @staticmethod
    def replace_latent(z: torch.Tensor, mask: torch.Tensor, latent_mode: str | None) -> torch.Tensor:
        """The latent the decoder sees: the true one, zeros, or its valid frames shuffled in time.

        Shuffling keeps the latent's per-clip statistics (and so the embedding) but destroys which frame
        says what; if reconstruction survives that, the decoder is reading the time jumps, not the latent.
        """
        if latent_mode is None:
            return z
        if latent_mode == "zero":
            return torch.zeros_like(z)
        if latent_mode == "shuffle":
            shuffled = z.clone()
            for b in range(z.shape[0]):
                frames = mask[b].nonzero().squeeze(-1)
                order = frames[torch.randperm(len(frames), device=z.device)]
                shuffled[b, :, frames] = z[b, :, order]
            return shuffled
        raise ValueError(f"latent_mode must be None, 'zero' or 'shuffle', got {latent_mode!r}")

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Normalised log-mel (batch, n_mels, frames) -> (latent, each encoder layer's output for the time jumps)."""
        valid = mask[:, None, :].to(x.dtype)  # padded frames stay zero (matters for non-causal layers)
        h = self.encoder_in(x) * valid
        skips = []
        for layer in self.encoder:
            h = layer(h) * valid
            skips.append(h)
        return self.to_latent(h) * valid, skips

    def autoencode(
        self, x: torch.Tensor, mask: torch.Tensor, latent_mode: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised log-mel (batch, n_mels, frames) -> (latent, reconstruction), both (batch, channels, frames)."""
        valid = mask[:, None, :].to(x.dtype)
        z, skips = self.encode(x, mask)
        d = self.from_latent(self.replace_latent(z, mask, latent_mode)) * valid
        for i, layer in enumerate(self.decoder):
            if self.config.time_jumps:
                jump = self.jumps[i](skips[-1 - i])
                if self.training and self.config.jump_dropout > 0:
                    # whole jumps vanish per clip and layer, so the decoder cannot rely on them alone
                    kept = torch.rand(jump.shape[0], 1, 1, device=jump.device) >= self.config.jump_dropout
                    jump = jump * kept.to(jump.dtype)
                d = d + jump
            d = layer(d) * valid
        return z, self.decoder_out(d)

    def pooled_latent(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The latent (batch, latent_size, frames) pooled over valid frames as `config.pooling` says, uncentred."""
        mean, std = masked_mean_std(z, mask)
        pooled = mean if self.config.pooling == "mean" else torch.cat([mean, std], dim=1)
        return pooled.squeeze(-1)

    @torch.no_grad()
    def fit_embedding_center(self, input_values: list[torch.Tensor]) -> torch.Tensor:
        """Set `embedding_center` to the mean pooled latent of these clips (one 1-D waveform each)."""
        pooled = []
        for audio in input_values:
            x, mask = self.normalized_logmel(audio[None], None)
            z, _ = self.autoencode(x, mask)
            pooled.append(self.pooled_latent(z, mask)[0])
        self.embedding_center.copy_(torch.stack(pooled).mean(0))
        return self.embedding_center

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        latent_mode: str | None = None,
        decode: bool = True,
        return_dict: bool | None = None,
        **kwargs,
    ) -> TJAEOutput | tuple:
        """`latent_mode` ("zero" or "shuffle") replaces the latent before decoding, to show that it matters;
        `decode=False` stops at the latent (no reconstruction, no loss): the mood embedding needs only the
        encoder, and the decoder is half the network."""
        x, mask = self.normalized_logmel(input_values, attention_mask)
        if decode:
            z, recon = self.autoencode(x, mask, latent_mode)
            valid = mask[:, None, :].to(x.dtype)
            loss = ((recon - x).square() * valid).sum() / (valid.sum() * x.shape[1]).clamp_min(1.0)
        else:
            (z, _), recon, loss = self.encode(x, mask), None, None
        embeddings = F.normalize(self.pooled_latent(z, mask) - self.embedding_center, dim=-1)
        out = TJAEOutput(
            loss=loss,
            embeddings=embeddings,
            latent=z.transpose(1, 2),
            reconstruction=recon,
            target=x,
            frame_mask=mask,
        )
        return out if return_dict is not False else out.to_tuple()
