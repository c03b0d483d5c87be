"""Identity database for 1:N search: SQLite records plus a FAISS index of their embeddings.

Files: ``<path>`` (SQLite) and ``<path>.faiss`` beside it (``faiss.write_index`` of the index
:mod:`benchmark.identify.index` chooses by gallery size: exact below 50,000 templates, above an inverted file
of compact codes whose best candidates are scored exactly; inner product = cosine on L2-normalized vectors;
FAISS ids are the SQLite row ids).

Records: table ``identities`` (id, name UNIQUE, metadata JSON, enrolled_at ISO-8601 UTC of the latest
enrolment or update, n_embeddings, embedding float32 BLOB); table ``meta`` (embedding_dim, model_id,
schema_version, version: a counter every write increments, and optionally threshold and far: the open-set
operating point the database was enrolled for). Ids come from AUTOINCREMENT, so a removed identity's id is
never handed out again.

Model identity: ``model_id`` names the model whose vectors the database holds; callers pass one that names its
weights and input geometry, not only its architecture (:func:`benchmark.models.checkpoint.model_identity`), and
every read and write with another is refused, naming both.

One vector per identity: ``enroll`` takes k >= 1 embeddings and stores the mean of the
L2-normalized rows, normalized again (a template; search then ranks identities, not images).
Enrolling a name that is already enrolled is an error (``update`` replaces a template, ``remove`` deletes
one): a silent overwrite would let a mistaken enrolment replace someone else's template.

Concurrency and consistency: SQLite is the source of truth and holds every vector; the FAISS file is a
derived copy that loads fast. ``create`` builds the file under a temporary name and links it into place only
if nothing is there (:func:`benchmark.io.exclusive_path`): it never replaces a database. Every write
(enroll, update, remove) holds SQLite's write lock (``BEGIN IMMEDIATE``) from its first read to its commit, so
writers of any number of processes serialize; a writer that waits more than ``lock_timeout`` seconds fails
with IdentityDBError. Inside the lock it brings its in-memory index up to date, changes the records, bumps
``version``, writes the index to a temporary file renamed over the old one (:func:`benchmark.io.atomic_path`),
then commits; if anything fails the transaction rolls back, no temporary file is left, and the next search
reloads the index. Every search first compares ``version`` with the one its index reflects and reloads
when another handle or process has written since. Loading reads ``<path>.faiss`` (under the lock, so no
writer is half-way) and uses it only when its ids and dimension match the records; when it is missing,
unreadable or out of step (a process died between the rename and the commit), it is rebuilt from SQLite and
rewritten, with a RuntimeWarning.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import faiss
import numpy as np

from benchmark import io
from benchmark.errors import DataError
from benchmark.evaluation.verification import l2_normalize
from benchmark.identify import index

UNKNOWN = "unknown"
SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 30.0
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL,
    enrolled_at TEXT NOT NULL,
    n_embeddings INTEGER NOT NULL,
    embedding BLOB NOT NULL
);
"""


class IdentityDBError(DataError):
    """The identity database cannot do what was asked; the message names the file and the reason."""


@dataclass(frozen=True)
class Match:
    """One search answer: the identity's row id (None for "unknown"), its name, the cosine score."""

    id: int | None
    name: str
    score: float


def index_path(path: str | os.PathLike) -> Path:
    """The FAISS index file that belongs to SQLite file ``path``: ``<path>.faiss``."""
    return Path(f"{path}.faiss")


def _empty_index(dim: int) -> faiss.Index:
    """An index of no templates, exact inner-product search with caller-chosen int64 ids."""
    return index.build(np.zeros((0, dim), np.float32), np.zeros(0, np.int64))


def _write_index(built: faiss.Index, file: Path) -> None:
    """``faiss.write_index`` to a temporary name beside ``file``, renamed over it when complete."""
    with io.atomic_path(file) as tmp:
        faiss.write_index(built, str(tmp))


class IdentityDB:
    """An open identity database; build one with :meth:`create` or :meth:`open`, close it after use.

    ``model_id`` must be passed to every read and write: vectors of two models are not comparable,
    so a mismatch with the database's ``model_id`` is an error, as is any dimension other than
    ``embedding_dim``. ``threshold`` and ``far``: the stored open-set operating point (None when the
    database was created without one).
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict[str, str], lock_timeout: float) -> None:
        self.path = path
        self.embedding_dim = int(meta["embedding_dim"])
        self.model_id = meta["model_id"]
        self.threshold = float(meta["threshold"]) if "threshold" in meta else None
        self.far = float(meta["far"]) if "far" in meta else None
        self.lock_timeout = lock_timeout
        self._conn: sqlite3.Connection | None = conn
        self._version = -1
        self._index = _empty_index(self.embedding_dim)
        self._refresh()

    @classmethod
    def create(cls, path: str | os.PathLike, embedding_dim: int, model_id: str, *, threshold: float | None = None,
               far: float | None = None, lock_timeout: float = LOCK_TIMEOUT_S) -> "IdentityDB":
        """Create an empty database at ``path`` (and ``<path>.faiss``); IdentityDBError if either exists, also
        when another process creates it at the same moment (exactly one wins).

        threshold, far: the open-set operating point to store (both or neither): the cosine threshold and the
        false accept rate it stands for on the model's validation pairs.
        """
        path = Path(path)
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"embedding_dim must be an integer >= 1, got {embedding_dim!r}")
        if not isinstance(model_id, str) or not model_id.strip():
            raise ValueError(f"model_id must be a non-empty string, got {model_id!r}")
        meta = [("embedding_dim", str(embedding_dim)), ("model_id", model_id),
                ("schema_version", str(SCHEMA_VERSION)), ("version", "0")]
        if (threshold is None) != (far is None):
            raise ValueError(f"pass threshold and far together or neither, got threshold={threshold!r}, far={far!r}")
        if threshold is not None:
            if math.isnan(threshold) or not 0.0 < far <= 1.0:
                raise ValueError(f"threshold must be a number (not NaN) and far in (0, 1], got {threshold!r}, {far!r}")
            meta += [("threshold", repr(float(threshold))), ("far", repr(float(far)))]
        for existing in (path, index_path(path)):  # the link below decides a race; this names the file
            if existing.exists():
                raise IdentityDBError(f"{existing}: already exists; open it with IdentityDB.open or choose a new path")
        try:
            with io.exclusive_path(path) as tmp:
                conn = sqlite3.connect(tmp)
                try:
                    with conn:
                        conn.executescript(_SCHEMA)
                        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta)
                finally:
                    conn.close()
        except FileExistsError:
            raise IdentityDBError(f"{path}: already exists; open it with IdentityDB.open or choose a new path") from None
        return cls.open(path, lock_timeout=lock_timeout)

    @classmethod
    def open(cls, path: str | os.PathLike, *, lock_timeout: float = LOCK_TIMEOUT_S) -> "IdentityDB":
        """Open an existing database; rebuilds ``<path>.faiss`` when it is missing or out of step.

        lock_timeout: seconds a write (or a reload of the index) waits for another process's write to end
        before failing with IdentityDBError.
        """
        path = Path(path)
        if not path.is_file():
            raise IdentityDBError(f"{path}: identity database does not exist (create it first: IdentityDB.create)")
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True, timeout=lock_timeout,
                               isolation_level=None)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            return cls(path, conn, meta, lock_timeout)
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            conn.close()
            if _is_locked(exc):
                raise IdentityDBError(_locked_message(path, lock_timeout)) from exc
            raise IdentityDBError(f"{path}: not an identity database ({exc!r})") from exc

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, embedding_dim: int, model_id: str, **create_kw: Any) -> "IdentityDB":
        """:meth:`open` the database at ``path``, or :meth:`create` it (``create_kw``: its keyword arguments,
        ``lock_timeout`` included) when there is none; safe when several processes do it at once."""
        if not Path(path).exists():
            try:
                return cls.create(path, embedding_dim, model_id, **create_kw)
            except IdentityDBError:
                if not Path(path).is_file():
                    raise
        return cls.open(path, lock_timeout=create_kw.get("lock_timeout", LOCK_TIMEOUT_S))

    def _stored_version(self) -> int:
        row = self._db().execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def _refresh(self) -> None:
        """Reload the index when the records changed since it was loaded (another handle or process wrote)."""
        if self._stored_version() != self._version:
            with self._locked():
                self._index, self._version = self._load_index(), self._stored_version()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """Hold SQLite's write lock for the block (``BEGIN IMMEDIATE``); commit when it succeeds, roll back when
        it fails. IdentityDBError when another writer holds the lock longer than ``lock_timeout``."""
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise IdentityDBError(_locked_message(self.path, self.lock_timeout)) from exc
            raise
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _writing(self, model_id: str) -> Iterator[sqlite3.Connection]:
        """A write transaction for model ``model_id``: under the lock, with the index up to date; the block
        changes the records and ``self._index``; then the version is bumped and the index written before the
        commit. On any failure the records roll back and the index is reloaded from the files."""
        self._check_model(model_id)
        try:
            with self._locked() as conn:
                if self._stored_version() != self._version:
                    self._index, self._version = self._load_index(), self._stored_version()
                yield conn
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(self._version + 1),))
                _write_index(self._index, index_path(self.path))
                self._version += 1
        except BaseException:
            self._version = -1  # the in-memory index may hold the failed change: the next search reloads it
            raise

    def _build_index(self) -> faiss.Index:
        """A FAISS index of every record's vector, from SQLite, of the kind the gallery's size calls for."""
        rows = self._db().execute("SELECT id, embedding FROM identities ORDER BY id").fetchall()
        vectors = np.stack([np.frombuffer(r[1], np.float32) for r in rows]) if rows else np.zeros((0, self.embedding_dim))
        return index.build(vectors, np.array([r[0] for r in rows], np.int64))

    def _load_index(self) -> faiss.Index:
        """``<path>.faiss`` when its ids and dimension match the records and its kind their number; else rebuilt
        from them and rewritten (with a RuntimeWarning when it was lost or out of step, quietly when the gallery
        has only grown or shrunk past :data:`benchmark.identify.index.EXACT_BELOW`). Call with the write lock held."""
        file = index_path(self.path)
        ids = np.sort(self._ids())
        reason = "missing" if len(ids) else None
        if file.is_file():
            try:
                stored = faiss.read_index(str(file))
            except RuntimeError as exc:
                stored, reason = None, f"unreadable ({exc})"
            if stored is not None:
                reason = None
                if stored.d != self.embedding_dim or not np.array_equal(index.stored_ids(stored), ids):
                    reason = "its ids or dimension differ from the records"
                elif index.kind_of(stored) == index.kind(len(ids)):
                    return stored
        if reason:
            warnings.warn(f"{file}: {reason}; rebuilt from {self.path}", RuntimeWarning, stacklevel=5)
        rebuilt = self._build_index()
        _write_index(rebuilt, file)
        return rebuilt

    def _ids(self) -> np.ndarray:
        return np.array([r[0] for r in self._db().execute("SELECT id FROM identities")], np.int64)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise IdentityDBError(f"{self.path}: the database is closed")
        return self._conn

    def _check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise IdentityDBError(f"{self.path}: model mismatch: the database holds embeddings of model "
                                  f"'{self.model_id}', the caller's model is '{model_id}'; use the database's "
                                  f"model, or enrol into a new database for this one")

    def _vectors(self, x: Any, what: str) -> np.ndarray:
        """(N, D) float32 L2-normalized rows of ``x`` ((D,) or (N, D)); errors name ``what``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != self.embedding_dim:
            raise IdentityDBError(f"{self.path}: embedding dimension mismatch: {what} has shape {x.shape}, the "
                                  f"database expects (D,) or (N, D) with D = {self.embedding_dim}")
        return l2_normalize(x, name=what).astype(np.float32)

    def _template(self, name: str, embeddings: Any, metadata: dict | None) -> tuple[bytes, int, str]:
        """(template bytes, number of embeddings, metadata JSON) of one person; ValueError for bad input."""
        vectors = self._vectors(embeddings, f"embeddings of '{name}'")
        template = vectors.mean(axis=0)
        if np.linalg.norm(template) < 1e-6:
            raise ValueError(f"embeddings of '{name}' cancel out (their mean is zero); pass embeddings of one face")
        try:
            meta_json = json.dumps({} if metadata is None else dict(metadata))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata of '{name}' must be a JSON-serializable dict: {exc}") from exc
        return (template / np.linalg.norm(template)).tobytes(), len(vectors), meta_json

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM identities").fetchone()[0])

    def __enter__(self) -> "IdentityDB":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the SQLite connection (the files are always complete on disk); idempotent."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def records(self, name: str | None = None) -> list[dict]:
        """Every identity (or the one called ``name``), by id: {id, name, metadata (dict), enrolled_at,
        n_embeddings}."""
        where, args = ("WHERE name = ?", (name,)) if name is not None else ("", ())
        rows = self._db().execute(
            f"SELECT id, name, metadata, enrolled_at, n_embeddings FROM identities {where} ORDER BY id", args).fetchall()
        return [{"id": i, "name": n, "metadata": json.loads(m), "enrolled_at": t, "n_embeddings": k}
                for i, n, m, t, k in rows]

    def enroll(self, name: str, embeddings: np.ndarray, *, model_id: str, metadata: dict | None = None) -> int:
        """Enrol ``name`` from embeddings (k, D) or (D,) of model ``model_id``; returns its new id.

        The stored template is the renormalized mean of the normalized rows. metadata: any
        JSON-serializable dict (default {}). Raises IdentityDBError for a duplicate or reserved
        name, a model or dimension mismatch; ValueError for zero/non-finite rows or bad metadata.
        """
        return self.enroll_many([(name, embeddings, metadata)], model_id=model_id)[0]

    def enroll_many(self, people: list[tuple[str, np.ndarray, dict | None]], *, model_id: str,
                    skip_existing: bool = False) -> list[int | None]:
        """Enrol (name, embeddings, metadata) triples in one transaction and one index write (as
        :meth:`enroll`; all or none). Returns the new ids in order; with ``skip_existing`` a name already
        enrolled is left as it is and gets None instead of being an error."""
        self._check_model(model_id)
        rows, names = [], set()
        enrolled_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for name, embeddings, metadata in people:
            if not isinstance(name, str) or not name.strip() or name == UNKNOWN:
                raise IdentityDBError(f"{self.path}: name must be a non-empty string other than '{UNKNOWN}', "
                                      f"got {name!r}")
            if name in names:
                raise IdentityDBError(f"{self.path}: identity '{name}' is already enrolled (twice in this batch); "
                                      f"remove it first to enrol it again")
            names.add(name)
            rows.append((name, *self._template(name, embeddings, metadata)))
        ids: list[int | None] = []
        with self._writing(model_id) as conn:
            for name, template, count, meta_json in rows:
                existing = conn.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
                if existing and skip_existing:
                    ids.append(None)
                    continue
                if existing:
                    raise IdentityDBError(f"{self.path}: identity '{name}' is already enrolled (id {existing[0]}); "
                                          f"remove it first to enrol it again, or update it")
                new_id = conn.execute("INSERT INTO identities (name, metadata, enrolled_at, n_embeddings, embedding) "
                                      "VALUES (?, ?, ?, ?, ?)", (name, meta_json, enrolled_at, count, template)).lastrowid
                self._index.add_with_ids(np.frombuffer(template, np.float32)[None], np.array([new_id], np.int64))
                ids.append(int(new_id))
        return ids

    def update(self, name: str, embeddings: np.ndarray, *, model_id: str, metadata: dict | None = None) -> int:
        """Replace the template (and metadata) of enrolled ``name`` in one transaction; it keeps its id, which is
        returned. IdentityDBError when ``name`` is not enrolled; other errors as :meth:`enroll`."""
        template, count, meta_json = self._template(name, embeddings, metadata)
        enrolled_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._writing(model_id) as conn:
            row = conn.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise IdentityDBError(f"{self.path}: no identity with name {name!r} ({len(self)} enrolled); "
                                      f"enrol it instead")
            conn.execute("UPDATE identities SET metadata = ?, enrolled_at = ?, n_embeddings = ?, embedding = ? "
                         "WHERE id = ?", (meta_json, enrolled_at, count, template, row[0]))
            ids = np.array([row[0]], np.int64)
            index.remove(self._index, ids)
            self._index.add_with_ids(np.frombuffer(template, np.float32)[None], ids)
        return int(row[0])

    def remove(self, identity: int | str) -> int:
        """Remove an identity by row id or name; returns its id. IdentityDBError if it is not enrolled."""
        column = "id" if isinstance(identity, (int, np.integer)) and not isinstance(identity, bool) else "name"
        with self._writing(self.model_id) as conn:
            row = conn.execute(f"SELECT id FROM identities WHERE {column} = ?", (identity,)).fetchone()
            if row is None:
                raise IdentityDBError(f"{self.path}: no identity with {column} {identity!r} ({len(self)} enrolled)")
            conn.execute("DELETE FROM identities WHERE id = ?", (row[0],))
            index.remove(self._index, np.array([row[0]], np.int64))
        return int(row[0])

    def search(self, query: np.ndarray, k: int = 1, *, model_id: str) -> list[Match] | list[list[Match]]:
        """The k most similar identities (cosine, best first) for a query (D,) or each row of (Q, D).

        Returns a list of at most k matches for a (D,) query, a list of such lists for (Q, D).
        Raises IdentityDBError when the database is empty or on a model/dimension mismatch.
        """
        conn = self._db()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        self._check_model(model_id)
        single = np.ndim(query) == 1
        queries = self._vectors(query, "query")
        self._refresh()
        if self._index.ntotal == 0:
            raise IdentityDBError(f"{self.path}: the database is empty; enrol identities before searching")
        scores, ids = self._index.search(queries, min(int(k), int(self._index.ntotal)))
        found = np.unique(ids[ids >= 0]).tolist()
        names = dict(conn.execute(f"SELECT id, name FROM identities WHERE id IN ({','.join('?' * len(found))})",
                                  found).fetchall())
        # an id another process removed between the two reads is no longer an answer
        results = [[Match(int(i), names[int(i)], float(s)) for s, i in zip(row_s, row_i) if int(i) in names]
                   for row_s, row_i in zip(scores, ids)]
        return results[0] if single else results

    def identify(self, query: np.ndarray, threshold: float, *, model_id: str) -> Match:
        """Open-set answer for one query (D,): the best match if its score >= ``threshold``,
        else ``Match(None, "unknown", best score)``."""
        if np.ndim(query) != 1:
            raise ValueError(f"identify takes one query of shape (D,), got shape {np.shape(query)}; use search for many")
        best = self.search(query, 1, model_id=model_id)[0]
        return best if best.score >= threshold else Match(None, UNKNOWN, best.score)


def _is_locked(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _locked_message(path: Path, timeout: float) -> str:
    return (f"{path}: another process held the database's write lock for more than {timeout:g} s; "
            "try again when its enrolment ends")
