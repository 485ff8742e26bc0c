"""Inner-product search over the catalog's fused vectors with FAISS.

Up to `EXACT_LIMIT` vectors the index is exact (`IndexFlatIP`: a BLAS matrix product). Above it, an inverted
file over 8-bit scalar-quantised vectors (`IVF<nlist>,SQ8`, inner-product metric) keeps memory at one byte per
dimension and visits only `nprobe` of `nlist` lists, so a million songs stay fast. The index only proposes a
candidate pool: ranking re-scores the pool exactly, so the approximation can only matter at the pool's edge.

`nprobe` defaults to a quarter of the lists. Measured on 1M clustered synthetic 800-d vectors as in
`python -m voicerec bench` (50 queries), the share of the exact top 10 found in the 200-song pool was 0.72 at
nprobe 16 of 1024, 0.95 at 128 and 0.99 at 256 (~30 ms per query on one busy core against ~120 ms for a numpy
scan). Quantisation is not what misses them (IVF1024,Flat found the same), the unvisited lists are.

From `PQ_FROM` vectors (10M) one byte per dimension is too much for one machine's memory (100M songs x 800 B =
80 GB), so the codes become product-quantised (`IVF<nlist>,PQ<m>x4fs`: m = dim/4 codes of 4 bits);
docs/large_catalogs.md has the measured recall and the plan past one machine.
"""

from __future__ import annotations

import faiss
import numpy as np

EXACT_LIMIT = 100_000
PQ_FROM = 10_000_000
"""From here the index stores product-quantised codes (IVF-PQ): DIMS_PER_CODE_BYTE dimensions per byte."""
DIMS_PER_CODE_BYTE = 8
PROBE_FRACTION = 0.25
TRAIN_MIN = 40 * 256
"""Training vectors at least: FAISS wants 39+ per centroid, and PQ fits 256 centroids per sub-vector."""


def auto_factory(n: int, dim: int) -> str:
    """The FAISS factory for n vectors: exact up to EXACT_LIMIT, IVF-SQ8 (dim bytes a vector) up to PQ_FROM,
    IVF-PQ above (dim / DIMS_PER_CODE_BYTE bytes a vector: 100 M songs of 800-d in 10 GB of codes)."""
    if n <= EXACT_LIMIT:
        return "Flat"
    nlist = int(2 ** round(np.log2(np.sqrt(n))))
    if n < PQ_FROM:
        return f"IVF{nlist},SQ8"
    m = 2 * max(1, dim // DIMS_PER_CODE_BYTE)  # 4-bit codes of 4 dimensions each, scanned with SIMD (FastScan)
    if dim % m == 0:
        return f"IVF{nlist},PQ{m}x4fs"
    return f"OPQ{m}_{4 * m},IVF{nlist},PQ{m}x4fs"  # PQ needs m | dim: rotate onto 4m dimensions first


class VectorIndex:
    """`search(queries, k)` -> (scores, row ids) of the k largest inner products per query."""

    def __init__(self, vectors: np.ndarray, factory: str = "auto", nprobe: int | None = None, seed: int = 0):
        """`nprobe` (IVF factories only): lists visited per query, None = PROBE_FRACTION of them."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"Expected a non-empty (rows, dim) array of vectors, got shape {vectors.shape}.")
        n, dim = vectors.shape
        if factory == "auto":
            factory = auto_factory(n, dim)
        self.factory = factory
        self.nprobe = 0
        self.index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        if not self.index.is_trained:
            rng = np.random.default_rng(seed)
            nlist = faiss.extract_index_ivf(self.index).nlist
            size = min(n, max(64 * nlist, TRAIN_MIN))
            sample = vectors[rng.choice(n, size=size, replace=False)]
            self.index.train(sample)
        self.index.add(vectors)
        if "IVF" in factory:
            ivf = faiss.extract_index_ivf(self.index)
            ivf.nprobe = self.nprobe = nprobe or max(1, int(PROBE_FRACTION * ivf.nlist))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"Query vectors have {queries.shape[1]} dimensions; the index has {self.dim}.")
        scores, ids = self.index.search(queries, min(int(k), len(self)))
        return scores, ids
