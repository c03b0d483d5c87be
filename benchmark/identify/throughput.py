"""FAISS search throughput on a large gallery (issue 4: >= 1,000 queries/s on 100,000 identities).

Measures the index the identity database uses (``IndexIDMap`` over exact ``IndexFlatIP``) on random
L2-normalized float32 vectors. A benchmark, not a test: the figure depends on the machine.
"""

from __future__ import annotations

import time

import faiss
import numpy as np


def random_unit_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """float32 (n, dim) Gaussian vectors scaled to unit length."""
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def search_throughput(gallery_size: int = 100_000, dim: int = 128, queries: int = 10_000, k: int = 1,
                      threads: int = 2, seed: int = 0, single_queries: int = 200) -> dict:
    """Queries per second of exact top-k cosine search.

    gallery_size: identities in the index; dim: embedding size; queries: batch searched at once
    (one ``index.search`` call, as a service batching requests would); single_queries: how many
    are then searched one call each (the latency of an interactive lookup); threads: OpenMP
    threads for FAISS (restored afterwards); seed: fixes gallery and queries.
    Returns {"queries_per_second" (batched), "single_query_ms" (mean latency, one query a call),
    "gallery_size", "dim", "k", "threads", "top1_self_match" (queries that are gallery vectors must
    find themselves: a sanity check, expected 1.0)}.
    """
    for name, value in (("gallery_size", gallery_size), ("dim", dim), ("queries", queries), ("k", k),
                        ("threads", threads), ("single_queries", single_queries)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    rng = np.random.default_rng(seed)
    gallery = random_unit_vectors(gallery_size, dim, rng)
    probes = random_unit_vectors(queries, dim, rng)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
    index.add_with_ids(gallery, np.arange(gallery_size, dtype=np.int64))
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        start = time.perf_counter()
        index.search(probes, k)
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for row in probes[:single_queries]:
            index.search(row[None], k)
        single = (time.perf_counter() - start) / min(single_queries, queries)
        picked = rng.choice(gallery_size, size=min(100, gallery_size), replace=False)
        _, found = index.search(gallery[picked], 1)
    finally:
        faiss.omp_set_num_threads(previous)
    return {"queries_per_second": queries / batched, "single_query_ms": 1000.0 * single,
            "gallery_size": gallery_size, "dim": dim, "k": k, "threads": threads,
            "top1_self_match": float(np.mean(found[:, 0] == picked))}
