"""The identity database's FAISS index: exact below a size, an inverted file above, recall against exact search."""

import faiss
import numpy as np
import pytest

from benchmark.identify import index
from benchmark.identify.database import IdentityDB
from benchmark.identify.throughput import gallery_search, noisy_views, random_unit_vectors

MODEL = "toy-v1"


def test_the_kind_follows_the_gallery_size():
    assert (index.kind(0), index.kind(index.EXACT_BELOW - 1), index.kind(index.EXACT_BELOW)) == ("flat", "flat", "ivf")
    assert (index.cells(50_000), index.cells(1_000_000)) == (256, 1024)


def test_the_ivf_index_finds_what_exact_search_finds_and_takes_appended_templates():
    # Prepare
    rng = np.random.default_rng(0)
    gallery = random_unit_vectors(index.EXACT_BELOW + 10_000, 32, rng)
    ids = np.arange(len(gallery), dtype=np.int64) * 3 + 7
    probes = noisy_views(gallery[rng.integers(0, len(gallery), 500)], 0.5, rng)
    # Execute
    built = index.build(gallery[:-10], ids[:-10])
    built.add_with_ids(gallery[-10:], ids[-10:])
    _, found = built.search(probes, 1)
    _, exact = faiss.knn(probes, gallery, 1, metric=faiss.METRIC_INNER_PRODUCT)
    _, appended = built.search(gallery[-10:], 1)
    # Assert
    assert index.kind_of(built) == "ivf" and np.array_equal(index.stored_ids(built), ids)
    assert np.mean(found[:, 0] == ids[exact[:, 0]]) >= 0.99
    assert np.array_equal(appended[:, 0], ids[-10:])


def test_a_database_past_the_size_switches_to_the_ivf_index_on_open(tmp_path, monkeypatch):
    # Prepare: a lower switch point keeps the test small; the database and its files are real
    monkeypatch.setattr(index, "EXACT_BELOW", 2_000)
    vectors = random_unit_vectors(2_500, 16, np.random.default_rng(1))
    with IdentityDB.create(tmp_path / "ids.sqlite", 16, MODEL) as db:
        db.enroll_many([(f"p{i}", v, None) for i, v in enumerate(vectors[:-1])], model_id=MODEL)
    # Execute
    with IdentityDB.open(tmp_path / "ids.sqlite") as db:
        db.enroll("last", vectors[-1], model_id=MODEL)
        names = [row[0].name for row in db.search(vectors[::50], model_id=MODEL)]
        last = db.search(vectors[-1], model_id=MODEL)[0].name
    stored = faiss.read_index(str(tmp_path / "ids.sqlite.faiss"))
    # Assert
    assert index.kind_of(stored) == "ivf" and len(index.stored_ids(stored)) == 2_500
    assert names == [f"p{i}" for i in range(0, 2_500, 50)] and last == "last"


def test_gallery_search_reports_recall_and_memory():
    figures = gallery_search(gallery_size=index.EXACT_BELOW, dim=16, queries=2_000, noise=0.3, exact_queries=500)
    assert figures["kind"] == "ivf" and figures["recall_at_1"] >= 0.95 and figures["queries_per_second"] > 0
    assert figures["memory_mb"] == pytest.approx(index.EXACT_BELOW * (16 * 4 + 8) / 2**20, rel=0.1)
