"""Identity database: round trip through the files, open-set answers, consistency, every error."""

import sqlite3

import faiss
import numpy as np
import pytest

from benchmark.identify.database import UNKNOWN, IdentityDB, IdentityDBError, Match, index_path

D = 8
MODEL = "toy-v1"


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def vectors() -> np.ndarray:
    """Five random unit vectors (5, D): templates of alice, bob, carol; two spare."""
    return unit(np.random.default_rng(0).standard_normal((5, D)))


@pytest.fixture
def db(tmp_path, vectors):
    """A database with alice (two embeddings), bob and carol."""
    with IdentityDB.create(tmp_path / "ids.sqlite", D, MODEL) as db:
        db.enroll("alice", np.stack([vectors[0], vectors[0] * 3.0]), model_id=MODEL, metadata={"branch": "north"})
        db.enroll("bob", vectors[1], model_id=MODEL)
        db.enroll("carol", vectors[2][None], model_id=MODEL)
        yield db


def test_round_trip_search_is_identical_after_reopen(db, vectors):
    # Prepare
    queries = unit(vectors[:3] + 0.1 * vectors[3])
    before = db.search(queries, k=3, model_id=MODEL)
    db.close()
    # Execute
    with IdentityDB.open(db.path) as reopened:
        after = reopened.search(queries, k=3, model_id=MODEL)
        records = reopened.records()
    # Assert
    assert after == before
    assert [row[0].name for row in after] == ["alice", "bob", "carol"]
    assert [len(row) for row in after] == [3, 3, 3]
    assert records[0]["metadata"] == {"branch": "north"} and records[0]["n_embeddings"] == 2
    assert [r["name"] for r in records] == ["alice", "bob", "carol"]
    assert index_path(db.path).is_file()


def test_template_is_the_mean_of_normalized_embeddings(tmp_path, vectors):
    # Prepare
    with IdentityDB.create(tmp_path / "t.sqlite", D, MODEL) as db:
        db.enroll("pair", np.stack([vectors[0] * 5.0, vectors[1]]), model_id=MODEL)
        # Execute
        best = db.search(unit(vectors[0] + vectors[1]), model_id=MODEL)
    # Assert: the normalized mean of the two unit vectors matches itself exactly
    assert best[0].name == "pair" and best[0].score == pytest.approx(1.0, abs=1e-5)


def test_remove_by_name_and_id_persists(db, vectors):
    # Prepare
    bob_id = db.search(vectors[1], model_id=MODEL)[0].id
    # Execute
    removed_name = db.remove("alice")
    removed_id = db.remove(bob_id)
    db.close()
    # Assert
    with IdentityDB.open(db.path) as reopened:
        assert len(reopened) == 1
        assert reopened.search(vectors[0], k=5, model_id=MODEL) == [
            Match(3, "carol", pytest.approx(float(vectors[0] @ vectors[2]), abs=1e-5))]
        new_id = reopened.enroll("alice", vectors[0], model_id=MODEL)
    assert (removed_name, removed_id) == (1, 2)
    assert new_id == 4  # ids are never reused


def test_identify_is_open_set(db, vectors):
    # Prepare
    near_bob = unit(vectors[1] + 0.2 * vectors[4])
    score = float(near_bob @ vectors[1])
    # Execute
    accepted = db.identify(near_bob, threshold=score - 1e-3, model_id=MODEL)
    rejected = db.identify(near_bob, threshold=score + 1e-3, model_id=MODEL)
    # Assert
    assert (accepted.name, accepted.id) == ("bob", 2) and accepted.score == pytest.approx(score, abs=1e-5)
    assert rejected == Match(None, UNKNOWN, pytest.approx(score, abs=1e-5))


def test_failed_index_write_leaves_records_and_index_unchanged(db, vectors, monkeypatch):
    # Prepare
    def broken(index, path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken)
    # Execute
    with pytest.raises(RuntimeError, match="disk full"):
        db.enroll("dave", vectors[3], model_id=MODEL)
    with pytest.raises(RuntimeError, match="disk full"):
        db.remove("bob")
    monkeypatch.undo()
    # Assert
    assert len(db) == 3 and [r["name"] for r in db.records()] == ["alice", "bob", "carol"]
    assert db.search(vectors[3], k=5, model_id=MODEL)[0].name != "dave"
    assert sorted(p.name for p in db.path.parent.iterdir()) == ["ids.sqlite", "ids.sqlite.faiss"]  # no temporary file
    db.close()
    with IdentityDB.open(db.path) as reopened:
        assert len(reopened) == 3


def test_index_out_of_step_with_records_is_rebuilt_on_open(db, vectors):
    # Prepare: the records lose bob behind the index's back (as if a commit was lost)
    db.close()
    with sqlite3.connect(db.path) as conn:
        conn.execute("DELETE FROM identities WHERE name = 'bob'")
    conn.close()
    # Execute
    with pytest.warns(RuntimeWarning, match="ids or dimension differ from the records; rebuilt"):
        reopened = IdentityDB.open(db.path)
    # Assert
    with reopened:
        assert len(reopened) == 2
        assert reopened.search(vectors[1], model_id=MODEL)[0].name != "bob"


@pytest.mark.parametrize(("damage", "reason"), [("delete", "missing"), ("garble", "unreadable")])
def test_missing_or_unreadable_index_is_rebuilt_on_open(db, vectors, damage, reason):
    # Prepare
    db.close()
    if damage == "delete":
        index_path(db.path).unlink()
    else:
        index_path(db.path).write_bytes(b"garbage")
    # Execute
    with pytest.warns(RuntimeWarning, match=f"{reason}.*; rebuilt from"):
        reopened = IdentityDB.open(db.path)
    # Assert
    with reopened:
        assert reopened.search(vectors[2], model_id=MODEL)[0].name == "carol"
    assert index_path(db.path).is_file()


def test_search_and_enrol_errors(db, vectors):
    # Execute / Assert
    with pytest.raises(IdentityDBError, match="embedding dimension mismatch: query has shape \\(1, 4\\).*D = 8"):
        db.search(np.ones(4), model_id=MODEL)
    with pytest.raises(IdentityDBError, match="embedding dimension mismatch: embeddings of 'eve' has shape"):
        db.enroll("eve", np.ones((2, 5)), model_id=MODEL)
    with pytest.raises(IdentityDBError, match="model mismatch: the database holds embeddings of model 'toy-v1', "
                                              "the caller's model is 'other'"):
        db.search(vectors[0], model_id="other")
    with pytest.raises(IdentityDBError, match="model mismatch"):
        db.enroll("eve", vectors[3], model_id="other")
    with pytest.raises(IdentityDBError, match="identity 'bob' is already enrolled \\(id 2\\); remove it first"):
        db.enroll("bob", vectors[3], model_id=MODEL)
    with pytest.raises(IdentityDBError, match="name must be a non-empty string other than 'unknown'"):
        db.enroll(UNKNOWN, vectors[3], model_id=MODEL)
    with pytest.raises(IdentityDBError, match="no identity with name 'zoe' \\(3 enrolled\\)"):
        db.remove("zoe")
    with pytest.raises(ValueError, match="rows \\[0\\] are zero vectors"):
        db.enroll("eve", np.zeros(D), model_id=MODEL)
    with pytest.raises(ValueError, match="metadata of 'eve' must be a JSON-serializable dict"):
        db.enroll("eve", vectors[3], model_id=MODEL, metadata={"when": object()})
    assert len(db) == 3


def test_database_file_errors(tmp_path, db, vectors):
    # Prepare
    empty = IdentityDB.create(tmp_path / "empty.sqlite", D, MODEL)
    not_db = tmp_path / "notes.sqlite"
    not_db.write_text("not a database")
    db.close()
    # Execute / Assert
    with pytest.raises(IdentityDBError, match="empty.sqlite: the database is empty; enrol identities before"):
        empty.search(vectors[0], model_id=MODEL)
    with pytest.raises(IdentityDBError, match="missing.sqlite: identity database does not exist"):
        IdentityDB.open(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(IdentityDBError, match="notes.sqlite: not an identity database"):
        IdentityDB.open(not_db)
    with pytest.raises(IdentityDBError, match="empty.sqlite: already exists"):
        IdentityDB.create(tmp_path / "empty.sqlite", D, MODEL)
    with pytest.raises(IdentityDBError, match="the database is closed"):
        db.search(vectors[0], model_id=MODEL)
    empty.close()


def test_enroll_many_is_all_or_none(tmp_path, vectors):
    # Prepare
    people = [("p0", vectors[0], None), ("p1", vectors[1:3], {"k": 2}), ("p2", vectors[3], None)]
    with IdentityDB.create(tmp_path / "batch.sqlite", D, MODEL) as db:
        # Execute
        ids = db.enroll_many(people, model_id=MODEL)
        with pytest.raises(IdentityDBError, match="identity 'p3' is already enrolled \\(twice in this batch\\)"):
            db.enroll_many([("p3", vectors[4], None), ("p3", vectors[4], None)], model_id=MODEL)
        with pytest.raises(IdentityDBError, match="embedding dimension mismatch: embeddings of 'p5'"):
            db.enroll_many([("p4", vectors[4], None), ("p5", np.ones(3), None)], model_id=MODEL)
        # Assert
        assert ids == [1, 2, 3] and len(db) == 3
        assert [r["n_embeddings"] for r in db.records()] == [1, 2, 1]
        assert db.search(vectors[4], k=5, model_id=MODEL)[0].name in {"p0", "p1", "p2"}


def test_update_replaces_a_template_in_place_and_skip_existing_leaves_people_as_they_are(db, vectors):
    # Execute
    bob = db.update("bob", vectors[4], model_id=MODEL, metadata={"photos": "2024"})
    ids = db.enroll_many([("alice", vectors[3], None), ("dave", vectors[3], None)], model_id=MODEL, skip_existing=True)
    db.close()
    # Assert
    with IdentityDB.open(db.path) as reopened:
        assert reopened.search(vectors[4], model_id=MODEL)[0] == Match(2, "bob", pytest.approx(1.0, abs=1e-5))
        assert reopened.search(vectors[0], model_id=MODEL)[0].name == "alice"
        assert reopened.records("bob")[0]["metadata"] == {"photos": "2024"}
        with pytest.raises(IdentityDBError, match="no identity with name 'zoe' \\(4 enrolled\\); enrol it instead"):
            reopened.update("zoe", vectors[0], model_id=MODEL)
        with pytest.raises(IdentityDBError, match="model mismatch"):
            reopened.update("bob", vectors[0], model_id="other")
    assert bob == 2 and ids == [None, 4]


def test_the_operating_point_is_stored_with_the_database(tmp_path):
    # Execute
    with IdentityDB.create(tmp_path / "t.sqlite", D, MODEL, threshold=0.31, far=1e-3) as db:
        pass
    with IdentityDB.create(tmp_path / "none.sqlite", D, MODEL) as plain:
        pass
    # Assert
    with IdentityDB.open(db.path) as reopened, IdentityDB.open(plain.path) as other:
        assert (reopened.threshold, reopened.far) == (0.31, 1e-3) and (other.threshold, other.far) == (None, None)
    with pytest.raises(ValueError, match="pass threshold and far together"):
        IdentityDB.create(tmp_path / "x.sqlite", D, MODEL, threshold=0.3)
    with pytest.raises(ValueError, match="threshold must be a number \\(not NaN\\)"):
        IdentityDB.create(tmp_path / "x.sqlite", D, MODEL, threshold=float("nan"), far=1e-3)
    assert not (tmp_path / "x.sqlite").exists()
