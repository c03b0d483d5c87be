"""The identity database's FAISS index: exact below a size, an inverted file of compact codes with exact re-scoring
above, recall against exact search."""

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
    assert [index.subquantizers(d) for d in (512, 128, 100, 32, 7)] == [64, 64, 50, 32, 7]


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
    scores, appended = built.search(gallery[-10:], 1)
    # Assert: exact cosine scores (re-scored on the full vectors), not the codes' estimates
    assert index.kind_of(built) == "ivf" and np.array_equal(index.stored_ids(built), ids)
    assert np.mean(found[:, 0] == ids[exact[:, 0]]) >= 0.99
    assert np.array_equal(appended[:, 0], ids[-10:]) and np.allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("size", [100, index.EXACT_BELOW])
def test_remove_takes_out_only_the_named_templates_in_both_kinds(size):
    # Prepare
    gallery = random_unit_vectors(size, 16, np.random.default_rng(2))
    ids = np.arange(size, dtype=np.int64) + 100
    built = index.build(gallery, ids)
    gone = ids[[0, 5, size - 1]]
    # Execute
    index.remove(built, gone)
    scores, found = built.search(gallery[[0, 1, 5, 6, size - 1]], 1)
    # Assert: the rest still answers for itself with its exact score; the removed ones answer someone else
    assert np.array_equal(index.stored_ids(built), np.setdiff1d(ids, gone))
    assert np.array_equal(found[[1, 3], 0], ids[[1, 6]]) and np.allclose(scores[[1, 3], 0], 1.0, atol=1e-5)
    assert not np.isin(found[:, 0], gone).any()


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
        db.update("p1", vectors[0], model_id=MODEL)
        db.remove("p0")
        moved = db.search(vectors[0], model_id=MODEL)[0]
    stored = faiss.read_index(str(tmp_path / "ids.sqlite.faiss"))
    # Assert
    assert index.kind_of(stored) == "ivf" and len(index.stored_ids(stored)) == 2_499
    assert names == [f"p{i}" for i in range(0, 2_500, 50)] and last == "last"
    assert moved.name == "p1" and moved.score == pytest.approx(1.0, abs=1e-5)


def test_gallery_search_reports_recall_and_memory():
    figures = gallery_search(gallery_size=index.EXACT_BELOW, dim=16, queries=2_000, noise=0.3, exact_queries=500)
    assert figures["kind"] == "ivf" and figures["recall_at_1"] >= 0.95 and figures["queries_per_second"] > 0
    # per template: the full vector (16 float32) for exact scoring, sixteen 4-bit codes, the caller's id and the
    # inverted list's own id (int64 each)
    assert figures["memory_mb"] == pytest.approx(index.EXACT_BELOW * (16 * 4 + 8 + 2 * 8) / 2**20, rel=0.05)
