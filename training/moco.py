"""MoCo for singing voices (Yakura, Watanabe & Goto, IEEE/ACM TASLP 30, 2022), as used by `train_sscl`.

A query encoder learns by gradient; a key encoder follows it as a moving average and fills a queue of
negatives. Besides the queue, each item brings its own transformed copies, which the policy of the variant
labels: a pitch-shifted copy is a negative for both encoders; a time-stretched copy is a positive for
`timbre` and a negative for `expression`. With WORLD pseudo-singers, the same segment sung by another vocal
tract (`warped`) is a negative for both, and the same vocal tract moved to another key (`repitched`) a positive.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from voicerec import SSCLModel

# which transformed copy of the query is a positive (True) or a negative (False), per variant
# (`warped` and `repitched` exist only with WORLD pseudo-singers, see training/views.py)
POLICIES: dict[str, dict[str, bool]] = {
    "timbre": {"key": True, "stretched": True, "pitched": False, "warped": False, "repitched": True},
    "expression": {"key": True, "stretched": False, "pitched": False, "warped": False, "repitched": True},
}


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """theta_k <- m * theta_k + (1 - m) * theta_q; buffers (BatchNorm statistics) are copied."""
    for p_t, p_o in zip(target.parameters(), online.parameters(), strict=True):
        p_t.mul_(momentum).add_(p_o.detach(), alpha=1.0 - momentum)
    for b_t, b_o in zip(target.buffers(), online.buffers(), strict=True):
        b_t.copy_(b_o)


class KeyQueue(nn.Module):
    """A FIFO ring of the most recent `size` keys (unit vectors), the negatives shared by every query."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=-1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        size, n = self.keys.shape[0], keys.shape[0]
        idx = (self.ptr + torch.arange(n, device=keys.device)) % size
        self.keys[idx] = keys.detach().to(self.keys.dtype)
        self.ptr.copy_((self.ptr + n) % size)


def contrastive_logits(
    query: torch.Tensor, copies: dict[str, torch.Tensor], policy: dict[str, bool], queue: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine logits of each query against its own copies and the queue, and which of them are positives.

    query: (B, D); copies[name]: (B, D) keys of item b's own views; queue: (K, D). Returns logits (B, C + K)
    and a boolean positive mask of the same shape (copies first, in `policy` order; the queue is negative).
    """
    names = [name for name in policy if name in copies]
    own = torch.stack([(query * copies[name]).sum(-1) for name in names], dim=1)
    logits = torch.cat([own, query @ queue.T], dim=1)
    positive = torch.zeros_like(logits, dtype=torch.bool)
    positive[:, : len(names)] = torch.tensor([policy[name] for name in names], device=logits.device)
    return logits, positive


def info_nce(logits: torch.Tensor, positive: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with several positives: each positive against all negatives, averaged over positives."""
    z = logits / temperature
    negatives = torch.logsumexp(z.masked_fill(positive, float("-inf")), dim=1, keepdim=True)
    per_positive = torch.logaddexp(z, negatives) - z
    return (per_positive * positive).sum() / positive.sum()


class ProjectionHead(nn.Sequential):
    """Training-only MLP between the embedding and the contrastive loss (not part of the shipped model)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


class MoCo(nn.Module):
    """Query encoder + head (trained), key encoder + head (momentum copies), and the key queue.

    `head_dim=0` means no projection head: the loss then acts on the shipped embedding itself, which makes
    it spread over the sphere (cosine similarities comparable across queries, as a pooled EER needs);
    with a head, only the head's output is pushed apart and the embeddings stay crowded together.
    """

    def __init__(self, encoder: SSCLModel, head_hidden: int, head_dim: int, queue_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        if head_dim:
            self.head: nn.Module = ProjectionHead(encoder.config.embedding_size, head_hidden, head_dim)
        else:
            self.head, head_dim = nn.Identity(), encoder.config.embedding_size
        self.key_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.key_head = copy.deepcopy(self.head).requires_grad_(False)
        self.queue = KeyQueue(queue_size, head_dim)

    def embed(self, encoder: SSCLModel, head: nn.Module, audio: torch.Tensor) -> torch.Tensor:
        return F.normalize(head(encoder(audio).pooled), dim=-1)

    def forward(
        self, batch: dict[str, torch.Tensor], policy: dict[str, bool]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Query embeddings and the keys of its copies. The key encoder sees all copies in one batch, so its
        BatchNorm statistics mix positives and negatives and cannot mark which of them is the positive."""
        query = self.embed(self.encoder, self.head, batch["query"])
        names = [name for name in policy if name in batch]
        with torch.no_grad():
            keys = self.embed(self.key_encoder, self.key_head, torch.cat([batch[name] for name in names]))
        return query, dict(zip(names, keys.chunk(len(names)), strict=True))

    @torch.no_grad()
    def update_key_encoder(self, momentum: float) -> None:
        momentum_update(self.encoder, self.key_encoder, momentum)
        momentum_update(self.head, self.key_head, momentum)
