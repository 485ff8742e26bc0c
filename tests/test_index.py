"""The catalog's vector index: exact, IVF-SQ8 and IVF-PQ tiers, recall of the candidate pool on clustered data."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from voicerec.search.index import VectorIndex, auto_factory
from voicerec.tools.bench import clustered_vectors


def test_auto_factory_tiers():
    assert auto_factory(100_000, 800) == "Flat"
    assert auto_factory(1_000_000, 800) == "IVF1024,SQ8"
    assert auto_factory(100_000_000, 800) == "IVF8192,PQ200x4fs"  # 100 bytes a song
    assert auto_factory(20_000_000, 212) == "OPQ52_208,IVF4096,PQ52x4fs"  # 52 does not divide 212: rotate first
    assert faiss.index_factory(212, auto_factory(20_000_000, 212), faiss.METRIC_INNER_PRODUCT).d == 212


@pytest.mark.parametrize("factory", ["IVF16,SQ8", "IVF16,PQ16x4fs"])
def test_quantised_pool_holds_the_exact_top10(factory):
    """The pool the ranking re-scores (top 100 of the index) holds nearly all of the exact top 10."""
    vectors = clustered_vectors(20_000, 64, seed=3)
    rng = np.random.default_rng(0)
    queries = vectors[rng.integers(len(vectors), size=20)] + 0.02 * rng.standard_normal((20, 64), dtype=np.float32)
    index = VectorIndex(vectors, factory=factory, nprobe=8)
    _, pools = index.search(queries, 100)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean([len(set(p) & set(e)) / 10 for p, e in zip(pools, exact, strict=True)])
    assert recall >= 0.9, recall
    with pytest.raises(ValueError, match="dimensions"):
        index.search(queries[:, :10], 5)
