"""The FAISS index of an identity database, chosen by gallery size.

Below :data:`EXACT_BELOW` templates the index is exact (``IndexIDMap`` over ``IndexFlatIP``: every template
scored). From there on it is an inverted file (``IndexIVFFlat``, Jegou et al. 2011): k-means cells of the
templates (``nlist`` about sqrt(N), trained on a sample), and a query scores only the templates of its
``nprobe`` nearest cells, with exact inner products. Both keep caller-chosen int64 ids (the SQLite row ids),
and both take new templates by appending (``add_with_ids``): an enrolment never rebuilds the index. Scores are
exact cosine in both; only which templates are scored is approximate in the IVF index, and its recall@1
against the exact index is what ``facebench perf`` measures (``faiss_search_1m``).
"""

from __future__ import annotations

import faiss
import numpy as np

EXACT_BELOW = 50_000
NPROBE = 32
TRAIN_PER_CELL = 40  # k-means sample: this many templates per cell (FAISS warns below 39)


def kind(n: int) -> str:
    """``flat`` (exact) for fewer than :data:`EXACT_BELOW` templates, else ``ivf``."""
    return "flat" if n < EXACT_BELOW else "ivf"


def cells(n: int) -> int:
    """IVF cells for ``n`` templates: sqrt(n) rounded to a power of two, at least 64."""
    return max(64, 1 << int(round(np.log2(np.sqrt(max(n, 1))))))


def build(vectors: np.ndarray, ids: np.ndarray, *, seed: int = 0, nprobe: int = NPROBE) -> faiss.Index:
    """An index of float32 (N, D) L2-normalized ``vectors`` under int64 ``ids`` (N,), of :func:`kind` (N).

    The IVF index trains its cells on a seeded sample of ``TRAIN_PER_CELL * cells(N)`` rows and searches
    ``nprobe`` cells per query.
    """
    vectors = np.ascontiguousarray(vectors, np.float32)
    n, dim = vectors.shape
    if kind(n) == "flat":
        index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
    else:
        nlist = cells(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        sample = np.random.default_rng(seed).choice(n, size=min(n, TRAIN_PER_CELL * nlist), replace=False)
        index.train(vectors[np.sort(sample)])
        index.nprobe = nprobe
    if n:
        index.add_with_ids(vectors, np.asarray(ids, np.int64))
    return index


def stored_ids(index: faiss.Index) -> np.ndarray:
    """The ids an index built by :func:`build` holds, sorted (int64); an empty array for any other index."""
    if isinstance(index, faiss.IndexIDMap):
        return np.sort(faiss.vector_to_array(index.id_map))
    if isinstance(index, faiss.IndexIVFFlat):
        lists = index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(k), lists.list_size(k)).copy()
                 for k in range(index.nlist) if lists.list_size(k)]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    return np.zeros(0, np.int64)


def kind_of(index: faiss.Index) -> str | None:
    """``flat`` or ``ivf`` for an index built by :func:`build`, None for any other."""
    if isinstance(index, faiss.IndexIDMap) and isinstance(faiss.downcast_index(index.index), faiss.IndexFlatIP):
        return "flat"
    return "ivf" if isinstance(index, faiss.IndexIVFFlat) else None
