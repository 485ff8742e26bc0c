"""MoCo for singing voices (Yakura, Watanabe & Goto, IEEE/ACM TASLP 30, 2022), as used by `finetune_ge2e`.

A query encoder learns by gradient; a key encoder follows it as a moving average and fills a queue of
negatives. Besides the queue, each item brings its own transformed copies, which the policy of the variant
labels: a pitch-shifted copy is a negative for both encoders; a time-stretched copy is a positive for
`timbre` and a negative for `expression`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# which transformed copy of the query is a positive (True) or a negative (False), per variant
POLICIES: dict[str, dict[str, bool]] = {
    "timbre": {"key": True, "stretched": True, "pitched": False},
    "expression": {"key": True, "stretched": False, "pitched": False},
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
