"""Within-singer covariance normalisation (WCCN) of clip embeddings, fitted after the contrastive training.

Why: contrastive training without singer labels cannot know which differences between two recordings of one
singer (the song, its key, the phrasing, the microphone) should not count. The training singers' labels show it:
the within-singer covariance of their clip embeddings. Its inverse square root shrinks those directions, so that
cosines are led by what differs between singers. The covariance is shrunk towards a multiple of the identity
because 256 directions are estimated from a few hundred clips of about 20 singers. Chosen by leave-singers-out
cross-validation (docs/training.md); a standard back-end of speaker verification (Hatch, Kajarekar & Stolcke,
Interspeech 2006).
"""

from __future__ import annotations

import numpy as np


def fit_wccn(embeddings: np.ndarray, singers: np.ndarray, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, matrix) such that normalise((e - mean) @ matrix) is the normalised embedding: `matrix` is the inverse
    square root of the within-singer covariance plus `shrinkage` times its mean variance in every direction."""
    names = np.unique(singers)
    if len(names) < 2:
        raise ValueError("WCCN needs clips of at least two singers.")
    x = np.asarray(embeddings, dtype=np.float64)
    residuals = np.concatenate([x[singers == s] - x[singers == s].mean(0) for s in names])
    covariance = residuals.T @ residuals / len(residuals)
    covariance += shrinkage * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    values, vectors = np.linalg.eigh(covariance)
    matrix = (vectors / np.sqrt(values)) @ vectors.T
    return x.mean(0).astype(np.float32), matrix.astype(np.float32)
