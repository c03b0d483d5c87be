"""Several processes writing one identity database at once: real processes, real SQLite files, real FAISS indexes."""

import multiprocessing
import sqlite3
import zlib

import numpy as np
import pytest

from benchmark.identify.database import IdentityDB, IdentityDBError, index_path

D = 8
MODEL = "toy-v1"
WORKERS = 4
PER_WORKER = 5


def template(name: str) -> np.ndarray:
    """A fixed unit vector per name (the same in every process)."""
    x = np.random.default_rng(zlib.crc32(name.encode())).standard_normal(D)
    return x / np.linalg.norm(x)


def enrol_worker(path: str, worker: int, start) -> tuple[dict, bool]:
    """Wait at the ``start`` barrier, then open-or-create ``path``, enrol this worker's people one transaction
    each and race for the shared name; returns ({name: id} of what it was told was enrolled, whether it won)."""
    start.wait()
    reported, won = {}, False
    with IdentityDB.open_or_create(path, D, MODEL) as db:
        for k in range(PER_WORKER):
            name = f"w{worker}_{k}"
            reported[name] = db.enroll(name, template(name), model_id=MODEL)
        try:
            reported["shared"] = db.enroll("shared", template("shared"), model_id=MODEL)
            won = True
        except IdentityDBError as err:
            assert "identity 'shared' is already enrolled" in str(err)
    return reported, won


def test_concurrent_enrolments_that_race_to_create_the_database_lose_nothing(tmp_path):
    # Prepare: every worker finds no database and creates it at the same moment
    path = tmp_path / "ids.sqlite"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(WORKERS) as pool:
        start = manager.Barrier(WORKERS)
        # Execute
        outcomes = pool.starmap(enrol_worker, [(str(path), w, start) for w in range(WORKERS)])
    # Assert
    reported = {name: i for names, _ in outcomes for name, i in names.items()}
    assert len(reported) == WORKERS * PER_WORKER + 1 and sum(won for _, won in outcomes) == 1
    with IdentityDB.open(path) as db:
        assert {r["name"]: r["id"] for r in db.records()} == reported
        for name, identity in reported.items():
            best = db.search(template(name), model_id=MODEL)[0]
            assert (best.name, best.id) == (name, identity)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.sqlite", "ids.sqlite.faiss"]


def test_an_open_handle_sees_what_another_handle_wrote(tmp_path):
    # Prepare
    with IdentityDB.create(tmp_path / "ids.sqlite", D, MODEL) as writer, IdentityDB.open(tmp_path / "ids.sqlite") as reader:
        writer.enroll("alice", template("alice"), model_id=MODEL)
        assert reader.search(template("alice"), model_id=MODEL)[0].name == "alice"
        # Execute
        writer.enroll("bob", template("bob"), model_id=MODEL)
        writer.remove("alice")
        found = reader.search(template("alice"), k=5, model_id=MODEL)
        reader.enroll("carol", template("carol"), model_id=MODEL)
        seen_by_writer = writer.search(template("carol"), k=5, model_id=MODEL)
    # Assert
    assert [m.name for m in found] == ["bob"]
    assert [m.name for m in seen_by_writer][0] == "carol" and len(seen_by_writer) == 2


def test_a_writer_waiting_past_the_lock_timeout_fails_clearly(tmp_path):
    # Prepare: another connection holds the write lock
    with IdentityDB.create(tmp_path / "ids.sqlite", D, MODEL, lock_timeout=0.2) as db:
        holder = sqlite3.connect(tmp_path / "ids.sqlite", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        # Execute / Assert
        with pytest.raises(IdentityDBError, match="another process held the database's write lock for more than 0.2 s"):
            db.enroll("alice", template("alice"), model_id=MODEL)
        holder.execute("ROLLBACK")
        holder.close()
        assert db.enroll("alice", template("alice"), model_id=MODEL) == 1


def test_create_never_replaces_a_database(tmp_path):
    # Prepare
    path = tmp_path / "ids.sqlite"
    with IdentityDB.create(path, D, MODEL) as db:
        db.enroll("alice", template("alice"), model_id=MODEL)
    index_path(path).unlink()  # only the SQLite file is left: create must still refuse
    # Execute / Assert
    with pytest.raises(IdentityDBError, match="ids.sqlite: already exists"):
        IdentityDB.create(path, D, MODEL)
    with pytest.warns(RuntimeWarning, match="missing"), IdentityDB.open(path) as db:
        assert [r["name"] for r in db.records()] == ["alice"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.sqlite", "ids.sqlite.faiss"]
