"""The FAISS index of an identity database, chosen by gallery size.

Below :data:`EXACT_BELOW` templates the index is exact (``IndexIDMap`` over ``IndexFlatIP``: every template
scored). From there on it is an inverted file with 4-bit product-quantized codes scanned by SIMD look-ups
(``IVF{nlist},PQ{m}x4fs``: Jegou et al. 2011; André et al. 2015, "Cache locality is not enough"), whose few
best candidates per query are then scored exactly against the full vectors (``RFlat``, :data:`K_FACTOR`
candidates per answer). A query visits :data:`PROBE_SHARE` of the cells. The cells and codes are trained on
a seeded sample (:data:`TRAIN_PER_CELL` templates a cell). Scores are exact cosine in both kinds; only which
templates are scored is approximate in the inverted file, and its recall@1 against exact search is what
``facebench perf`` measures (``faiss_search_1m``).

Both keep caller-chosen int64 ids (the SQLite row ids) and take new templates by appending
(``add_with_ids``). Removal (:func:`remove`) is in place for the exact index; the inverted file re-adds the
templates it keeps (its trained cells and codebooks stay), which costs about an enrolment of the whole gallery.

Why these settings: on 1,000,000 uniformly random 512-d templates probed by noisy views (cosine about 0.71),
the worst case for any partition, an inverted file with exact vectors (``IVFFlat``) reached recall@1 0.72 at
106 queries/s visiting 32 of 1,024 cells; recall needs about a third of the cells visited, which only compact
codes make fast. :data:`PROBE_SHARE` is the smallest share whose recall@1 had a 95% Wilson lower bound of at
least 0.99 on a gallery of seed 1 (2,000 exact queries: shares 0.25 / 0.3125 / 0.375 / 0.5 reached 0.9865 /
0.9965 / 0.998 / 1.0); ``facebench perf`` measures seed 0.
"""

from __future__ import annotations

import faiss
import numpy as np

EXACT_BELOW = 50_000
PROBE_SHARE = 0.3125  # cells visited per query, as a share of all cells
K_FACTOR = 4  # candidates scored exactly per answer
MAX_CODES = 64  # 4-bit product-quantizer codes per template at most (256 bits; one code a dimension below 64)
TRAIN_PER_CELL = 40  # k-means sample: this many templates per cell (FAISS warns below 39)


def kind(n: int) -> str:
    """``flat`` (exact) for fewer than :data:`EXACT_BELOW` templates, else ``ivf``."""
    return "flat" if n < EXACT_BELOW else "ivf"


def cells(n: int) -> int:
    """IVF cells for ``n`` templates: sqrt(n) rounded to a power of two, at least 64."""
    return max(64, 1 << int(round(np.log2(np.sqrt(max(n, 1))))))


def subquantizers(dim: int) -> int:
    """Product-quantizer codes per template: the largest divisor of ``dim`` up to :data:`MAX_CODES`."""
    return max(m for m in range(1, min(dim, MAX_CODES) + 1) if dim % m == 0)


def build(vectors: np.ndarray, ids: np.ndarray, *, seed: int = 0) -> faiss.Index:
    """An index of float32 (N, D) L2-normalized ``vectors`` under int64 ``ids`` (N,), of :func:`kind` (N)."""
    vectors = np.ascontiguousarray(vectors, np.float32)
    n, dim = vectors.shape
    if kind(n) == "flat":
        built = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
    else:
        nlist = cells(n)
        built = faiss.index_factory(dim, f"IDMap2,IVF{nlist},PQ{subquantizers(dim)}x4fs,RFlat",
                                    faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(built)
        ivf.cp.seed = seed
        ivf.nprobe = max(1, round(PROBE_SHARE * nlist))
        faiss.downcast_index(built.index).k_factor = K_FACTOR
        sample = np.random.default_rng(seed).choice(n, size=min(n, TRAIN_PER_CELL * nlist), replace=False)
        built.train(vectors[np.sort(sample)])
    if n:
        built.add_with_ids(vectors, np.asarray(ids, np.int64))
    return built


def remove(built: faiss.Index, ids: np.ndarray) -> None:
    """Remove int64 ``ids`` from an index made by :func:`build`: in place for ``flat``; for ``ivf`` the kept
    templates are re-added to the emptied index (the full vectors it keeps for exact scoring)."""
    ids = np.asarray(ids, np.int64)
    if kind_of(built) == "flat":
        built.remove_ids(ids)
        return
    stored = faiss.vector_to_array(built.id_map)
    vectors = faiss.downcast_index(faiss.downcast_index(built.index).refine_index).reconstruct_n(0, built.ntotal)
    keep = ~np.isin(stored, ids)
    built.reset()
    if keep.any():
        built.add_with_ids(vectors[keep], stored[keep])


def stored_ids(built: faiss.Index) -> np.ndarray:
    """The ids an index made by :func:`build` holds, sorted (int64); an empty array for any other index."""
    if kind_of(built) is None:
        return np.zeros(0, np.int64)
    return np.sort(faiss.vector_to_array(built.id_map))


def kind_of(built: faiss.Index) -> str | None:
    """``flat`` or ``ivf`` for an index made by :func:`build`, None for any other."""
    if not isinstance(built, faiss.IndexIDMap):
        return None
    inner = faiss.downcast_index(built.index)
    if isinstance(inner, faiss.IndexFlatIP):
        return "flat"
    if isinstance(built, faiss.IndexIDMap2) and isinstance(inner, faiss.IndexRefineFlat) and \
            isinstance(faiss.downcast_index(inner.base_index), faiss.IndexIVFPQFastScan):
        return "ivf"
    return None
