"""Identity database throughput: search on large galleries and enrolment.

* :func:`search_throughput`: exact ``IndexFlatIP`` search on 100,000 identities (issue 4: >= 1,000 queries/s);
* :func:`gallery_search`: the database's own index (:mod:`benchmark.identify.index`) on a million 512-d
  templates, probed by noisy views of enrolled templates, with its recall@1 against exact search and its memory
  (issue 15: >= 2,000 queries/s at recall@1 >= 0.99);
* :func:`enroll_throughput`: identities per second enrolled into a real database.

Random L2-normalized float32 vectors. Benchmarks, not tests: the figures depend on the machine.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from benchmark.identify import index
from benchmark.identify.database import IdentityDB


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


def noisy_views(templates: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Each template plus ``noise`` times a random unit vector, L2-normalized: a probe of an enrolled person
    (noise 1.0: cosine about 0.71 with its template, as a genuine pair of a trained face recognizer)."""
    x = templates + noise * random_unit_vectors(len(templates), templates.shape[1], rng)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def gallery_search(gallery_size: int = 1_000_000, dim: int = 512, queries: int = 20_000, noise: float = 1.0,
                   exact_queries: int = 1_000, threads: int = 2, seed: int = 0) -> dict:
    """Batched top-1 search in the index an identity database of ``gallery_size`` templates uses
    (:func:`benchmark.identify.index.build`: an inverted file at a million), and its recall against exact search.

    gallery_size random unit templates of ``dim``; ``queries`` noisy views (:func:`noisy_views`) of templates
    drawn at random, searched in one call; recall@1: of the first ``exact_queries``, the share whose answer is
    the exact inner-product search's (``faiss.knn`` over every template). threads: OpenMP threads (restored).
    Returns {"queries_per_second", "recall_at_1", "memory_mb" (the serialized index), "build_seconds", "kind",
    "gallery_size", "dim", "noise", "threads"}.
    """
    rng = np.random.default_rng(seed)
    gallery = random_unit_vectors(gallery_size, dim, rng)
    probes = noisy_views(gallery[rng.integers(0, gallery_size, queries)], noise, rng)
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        start = time.perf_counter()
        built = index.build(gallery, np.arange(gallery_size, dtype=np.int64), seed=seed)
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        _, found = built.search(probes, 1)
        seconds = time.perf_counter() - start
        _, exact = faiss.knn(probes[:exact_queries], gallery, 1, metric=faiss.METRIC_INNER_PRODUCT)
    finally:
        faiss.omp_set_num_threads(previous)
    return {"queries_per_second": queries / seconds, "recall_at_1": float(np.mean(found[:exact_queries, 0] == exact[:, 0])),
            "memory_mb": faiss.serialize_index(built).nbytes / 2**20, "build_seconds": build_seconds,
            "kind": index.kind_of(built), "gallery_size": gallery_size, "dim": dim, "noise": noise, "threads": threads}


def enroll_throughput(identities: int = 20_000, batch: int = 1_000, dim: int = 512, images: int = 3,
                      seed: int = 0) -> dict:
    """Identities per second enrolled into a real :class:`~benchmark.identify.database.IdentityDB` (a temporary
    folder), ``batch`` people a transaction, each from ``images`` random unit embeddings of ``dim``; reference:
    the same rows inserted into a bare SQLite table and a bare FAISS index in one transaction, no checks.
    Returns {"identities_per_second", "bare_identities_per_second", "identities", "batch", "dim"}."""
    rng = np.random.default_rng(seed)
    embeddings = random_unit_vectors(identities * images, dim, rng).reshape(identities, images, dim)
    people = [(f"person{i:07d}", embeddings[i], None) for i in range(identities)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with IdentityDB.create(Path(tmp) / "ids.sqlite", dim, "throughput") as db:
            for first in range(0, identities, batch):
                db.enroll_many(people[first:first + batch], model_id="throughput")
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        templates = embeddings.mean(axis=1)
        templates /= np.linalg.norm(templates, axis=1, keepdims=True)
        bare = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
        with sqlite3.connect(Path(tmp) / "bare.sqlite") as conn:
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, embedding BLOB)")
            conn.executemany("INSERT INTO t VALUES (?, ?, ?)",
                             ((i, people[i][0], templates[i].tobytes()) for i in range(identities)))
            bare.add_with_ids(templates, np.arange(identities, dtype=np.int64))
        bare_seconds = time.perf_counter() - start
    return {"identities_per_second": identities / seconds, "bare_identities_per_second": identities / bare_seconds,
            "identities": identities, "batch": batch, "dim": dim}
