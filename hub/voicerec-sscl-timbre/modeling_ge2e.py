"""GE2E voice encoder as a transformers model: Resemblyzer's network, and the singing encoders fine-tuned from it.

The network reads 1.6 s windows (160 frames) of a mel power spectrogram; a window's embedding is the rectified
projection of the LSTM's last hidden state, unit length; a clip's embedding is the normalised mean of its windows'
embeddings, the windows placed as Resemblyzer's `embed_utterance` places them, then (in the singing encoders)
moved by a within-singer covariance normalisation (WCCN) fitted in training: directions in which one singer's
recordings differ from each other (song, key, phrasing) are shrunk, so that what is left tells singers apart.
GE2E as shipped has the identity there. All windows of a batch of clips go through the LSTM together, so a batch
costs one pass over 160 frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_ge2e import GE2EConfig


@dataclass
class GE2EOutput(ModelOutput):
    """`embeddings`: (batch, embedding_size), unit length; `window_embeddings`: (windows, embedding_size), unit
    length, the windows of all clips in order; `window_counts`: how many windows each clip has."""

    embeddings: torch.Tensor | None = None
    window_embeddings: torch.Tensor | None = None
    window_counts: torch.Tensor | None = None


def window_starts(n_frames: int, window: int, step: int, min_coverage: float) -> list[int]:
    """First frame of each window over `n_frames` valid frames, `step` apart; the last window is kept if at least
    `min_coverage` of it is valid (or if it is the only one): Resemblyzer's `compute_partial_slices`."""
    starts = list(range(0, max(1, n_frames - window + step + 1), step))
    coverage = (n_frames - 1 - starts[-1]) / window  # its samples up to the clip's end, as a share of the window
    if coverage < min_coverage and len(starts) > 1:
        starts.pop()
    return starts


class GE2EPreTrainedModel(PreTrainedModel):
    config_class = GE2EConfig
    base_model_prefix = "ge2e"
    main_input_name = "input_features"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.LSTM, nn.Linear)):
            module.reset_parameters()
        if isinstance(module, GE2EModel):  # a checkpoint saved before WCCN existed: the identity
            module.whiten_mean.zero_()
            module.whiten_matrix.copy_(torch.eye(len(module.whiten_matrix)))


class GE2EModel(GE2EPreTrainedModel):
    def __init__(self, config: GE2EConfig) -> None:
        super().__init__(config)
        self.lstm = nn.LSTM(config.n_mels, config.hidden_size, config.num_layers, batch_first=True)
        self.linear = nn.Linear(config.hidden_size, config.embedding_size)
        # WCCN of the clip embedding: normalise((e - whiten_mean) @ whiten_matrix); the identity unless fitted
        self.register_buffer("whiten_mean", torch.zeros(config.embedding_size), persistent=True)
        self.register_buffer("whiten_matrix", torch.eye(config.embedding_size), persistent=True)
        self.post_init()

    @property
    def window_step(self) -> int:
        frames_per_second = self.config.sampling_rate / self.config.hop_length
        return max(1, int(np.round(frames_per_second / self.config.windows_per_second)))

    def window_states(self, windows: torch.Tensor) -> torch.Tensor:
        """(windows, frames, n_mels) mel power -> (windows, hidden_size): the LSTM's last hidden state."""
        _, (hidden, _) = self.lstm(windows)
        return hidden[-1]

    def project(self, states: torch.Tensor) -> torch.Tensor:
        """Window states -> unit window embeddings (rectified projection, as GE2E was trained)."""
        return F.normalize(F.relu(self.linear(states)), dim=-1)

    def windows_of(
        self, input_features: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All windows of a batch of clips, stacked, and how many each clip has."""
        batch, frames, _ = input_features.shape
        valid = attention_mask.sum(-1).tolist() if attention_mask is not None else [frames] * batch
        size = self.config.window_frames
        if frames < size:  # a clip shorter than one window reads silence after its end, as in Resemblyzer
            input_features = F.pad(input_features, (0, 0, 0, size - frames))
        starts = [window_starts(int(n), size, self.window_step, self.config.min_coverage) for n in valid]
        windows = torch.stack([input_features[i, s : s + size] for i, clip in enumerate(starts) for s in clip])
        return windows, torch.tensor([len(s) for s in starts])

    def mean_windows(self, window_embeddings: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The normalised sum of each clip's window embeddings (before WCCN)."""
        clip_of = torch.repeat_interleave(torch.arange(len(counts)), counts)
        sums = torch.zeros(len(counts), window_embeddings.shape[1], dtype=window_embeddings.dtype)
        return F.normalize(sums.index_add(0, clip_of, window_embeddings), dim=-1)

    def pool(self, window_embeddings: torch.Tensor, counts: torch.Tensor, return_dict: bool | None = None):
        """Clip embeddings: the mean of each clip's window embeddings, normalised by the fitted WCCN."""
        pooled = self.mean_windows(window_embeddings, counts)
        embeddings = F.normalize((pooled - self.whiten_mean) @ self.whiten_matrix, dim=-1)
        out = GE2EOutput(embeddings=embeddings, window_embeddings=window_embeddings, window_counts=counts)
        return out if return_dict is not False else out.to_tuple()

    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> GE2EOutput | tuple:
        windows, counts = self.windows_of(input_features, attention_mask)
        return self.pool(self.project(self.window_states(windows)), counts, return_dict)
