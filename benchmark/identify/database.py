"""Identity database for 1:N search: SQLite records plus a FAISS index of their embeddings.

Files: ``<path>`` (SQLite) and ``<path>.faiss`` beside it (``faiss.write_index`` of an
``IndexIDMap`` over ``IndexFlatIP``, exact inner product = cosine on L2-normalized vectors; FAISS ids
are the SQLite row ids).

Records: table ``identities`` (id, name UNIQUE, metadata JSON, enrolled_at ISO-8601 UTC,
n_embeddings, embedding float32 BLOB); table ``meta`` (embedding_dim, model_id, schema_version).
Ids come from AUTOINCREMENT, so a removed identity's id is never handed out again.

One vector per identity: ``enroll`` takes k >= 1 embeddings and stores the mean of the
L2-normalized rows, normalized again (a template; search then ranks identities, not images).
Enrolling a name that is already enrolled is an error (remove it first): a silent update would let
a mistaken enrolment overwrite someone else's template.

Consistency: SQLite is the source of truth and holds every vector; the FAISS file is a derived
copy that loads fast. A write (enroll/remove) runs inside an SQLite transaction, writes the index to
a temporary file and renames it over the old one (:func:`benchmark.io.atomic_path`), then commits.
If anything fails the transaction rolls back and the in-memory index is rebuilt from the records.
``open`` uses the FAISS file only when its ids and dimension match the records; when it is missing,
unreadable or out of step (the process died between the rename and the commit), it is rebuilt
from SQLite and rewritten, with a RuntimeWarning.
"""

from __future__ import annotations

import json
import os
import sqlite3
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmark import io
from benchmark.errors import DataError
from benchmark.evaluation.verification import l2_normalize

UNKNOWN = "unknown"
SCHEMA_VERSION = 1
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


def _empty_index(dim: int) -> faiss.IndexIDMap:
    """Exact inner-product search with caller-chosen int64 ids."""
    return faiss.IndexIDMap(faiss.IndexFlatIP(dim))


def _write_index(index: faiss.Index, file: Path) -> None:
    """``faiss.write_index`` to a temporary name beside ``file``, renamed over it when complete."""
    with io.atomic_path(file) as tmp:
        faiss.write_index(index, str(tmp))


class IdentityDB:
    """An open identity database; build one with :meth:`create` or :meth:`open`, close it after use.

    ``model_id`` must be passed to every read and write: vectors of two models are not comparable,
    so a mismatch with the database's ``model_id`` is an error, as is any dimension other than
    ``embedding_dim``.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, embedding_dim: int, model_id: str) -> None:
        self.path = path
        self.embedding_dim = embedding_dim
        self.model_id = model_id
        self._conn: sqlite3.Connection | None = conn
        self._index = self._load_index()

    @classmethod
    def create(cls, path: str | os.PathLike, embedding_dim: int, model_id: str) -> "IdentityDB":
        """Create an empty database at ``path`` (and ``<path>.faiss``); error if either exists."""
        path = Path(path)
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"embedding_dim must be an integer >= 1, got {embedding_dim!r}")
        if not isinstance(model_id, str) or not model_id.strip():
            raise ValueError(f"model_id must be a non-empty string, got {model_id!r}")
        for existing in (path, index_path(path)):
            if existing.exists():
                raise IdentityDBError(f"{existing}: already exists; open it with IdentityDB.open or choose a new path")
        with io.atomic_path(path) as tmp:
            conn = sqlite3.connect(tmp)
            try:
                with conn:
                    conn.executescript(_SCHEMA)
                    conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                        ("embedding_dim", str(embedding_dim)), ("model_id", model_id),
                        ("schema_version", str(SCHEMA_VERSION))])
            finally:
                conn.close()
        _write_index(_empty_index(embedding_dim), index_path(path))
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "IdentityDB":
        """Open an existing database; rebuilds ``<path>.faiss`` when it is missing or out of step."""
        path = Path(path)
        if not path.is_file():
            raise IdentityDBError(f"{path}: identity database does not exist (create it first: IdentityDB.create)")
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            db = cls(path, conn, int(meta["embedding_dim"]), meta["model_id"])
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            conn.close()
            raise IdentityDBError(f"{path}: not an identity database ({exc!r})") from exc
        return db

    def _build_index(self) -> faiss.IndexIDMap:
        """A FAISS index of every record's vector, from SQLite."""
        rows = self._db().execute("SELECT id, embedding FROM identities ORDER BY id").fetchall()
        index = _empty_index(self.embedding_dim)
        if rows:
            ids = np.array([r[0] for r in rows], np.int64)
            index.add_with_ids(np.stack([np.frombuffer(r[1], np.float32) for r in rows]), ids)
        return index

    def _load_index(self) -> faiss.IndexIDMap:
        """``<path>.faiss`` when its ids and dimension match the records; else rebuilt from them and rewritten."""
        file = index_path(self.path)
        if not file.is_file():
            reason = "missing"
        else:
            try:
                stored = faiss.read_index(str(file))
            except RuntimeError as exc:
                stored, reason = None, f"unreadable ({exc})"
            if stored is not None:
                if (isinstance(stored, faiss.IndexIDMap) and stored.d == self.embedding_dim
                        and np.array_equal(np.sort(faiss.vector_to_array(stored.id_map)), np.sort(self._ids()))):
                    return stored
                reason = "its ids or dimension differ from the records"
        warnings.warn(f"{file}: {reason}; rebuilt from {self.path}", RuntimeWarning, stacklevel=4)
        index = self._build_index()
        _write_index(index, file)
        return index

    def _ids(self) -> np.ndarray:
        return np.array([r[0] for r in self._db().execute("SELECT id FROM identities")], np.int64)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise IdentityDBError(f"{self.path}: the database is closed")
        return self._conn

    def _check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise IdentityDBError(f"{self.path}: model mismatch: the database holds embeddings of model "
                                  f"'{self.model_id}', the caller's model is '{model_id}'")

    def _vectors(self, x: Any, what: str) -> np.ndarray:
        """(N, D) float32 L2-normalized rows of ``x`` ((D,) or (N, D)); errors name ``what``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != self.embedding_dim:
            raise IdentityDBError(f"{self.path}: embedding dimension mismatch: {what} has shape {x.shape}, the "
                                  f"database expects (D,) or (N, D) with D = {self.embedding_dim}")
        return l2_normalize(x, name=what).astype(np.float32)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __enter__(self) -> "IdentityDB":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the SQLite connection (the files are always complete on disk); idempotent."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def records(self) -> list[dict]:
        """Every identity, by id: {id, name, metadata (dict), enrolled_at, n_embeddings}."""
        rows = self._db().execute(
            "SELECT id, name, metadata, enrolled_at, n_embeddings FROM identities ORDER BY id").fetchall()
        return [{"id": i, "name": n, "metadata": json.loads(m), "enrolled_at": t, "n_embeddings": k}
                for i, n, m, t, k in rows]

    def enroll(self, name: str, embeddings: np.ndarray, *, model_id: str, metadata: dict | None = None) -> int:
        """Enrol ``name`` from embeddings (k, D) or (D,) of model ``model_id``; returns its new id.

        The stored template is the renormalized mean of the normalized rows. metadata: any
        JSON-serializable dict (default {}). Raises IdentityDBError for a duplicate or reserved
        name, a model or dimension mismatch; ValueError for zero/non-finite rows or bad metadata.
        """
        return self.enroll_many([(name, embeddings, metadata)], model_id=model_id)[0]

    def enroll_many(self, people: list[tuple[str, np.ndarray, dict | None]], *, model_id: str) -> list[int]:
        """Enrol (name, embeddings, metadata) triples in one transaction and one index write (as
        :meth:`enroll`; all or none). Returns the new ids in order."""
        conn = self._db()
        self._check_model(model_id)
        rows, names = [], set()
        enrolled_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for name, embeddings, metadata in people:
            if not isinstance(name, str) or not name.strip() or name == UNKNOWN:
                raise IdentityDBError(f"{self.path}: name must be a non-empty string other than '{UNKNOWN}', "
                                      f"got {name!r}")
            existing = conn.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if existing or name in names:
                where = f"id {existing[0]}" if existing else "twice in this batch"
                raise IdentityDBError(f"{self.path}: identity '{name}' is already enrolled ({where}); "
                                      f"remove it first to enrol it again")
            vectors = self._vectors(embeddings, f"embeddings of '{name}'")
            template = vectors.mean(axis=0)
            if np.linalg.norm(template) < 1e-6:
                raise ValueError(f"embeddings of '{name}' cancel out (their mean is zero); pass embeddings of one face")
            try:
                meta_json = json.dumps({} if metadata is None else dict(metadata))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"metadata of '{name}' must be a JSON-serializable dict: {exc}") from exc
            names.add(name)
            rows.append((name, meta_json, enrolled_at, len(vectors), (template / np.linalg.norm(template)).tobytes()))
        try:
            with conn:
                ids = [conn.execute("INSERT INTO identities (name, metadata, enrolled_at, n_embeddings, embedding) "
                                    "VALUES (?, ?, ?, ?, ?)", row).lastrowid for row in rows]
                if ids:
                    templates = np.stack([np.frombuffer(row[-1], np.float32) for row in rows])
                    self._index.add_with_ids(templates, np.array(ids, np.int64))
                    _write_index(self._index, index_path(self.path))
        except BaseException:
            self._index = self._build_index()
            raise
        return [int(i) for i in ids]

    def remove(self, identity: int | str) -> int:
        """Remove an identity by row id or name; returns its id. IdentityDBError if it is not enrolled."""
        conn = self._db()
        column = "id" if isinstance(identity, (int, np.integer)) and not isinstance(identity, bool) else "name"
        row = conn.execute(f"SELECT id FROM identities WHERE {column} = ?", (identity,)).fetchone()
        if row is None:
            raise IdentityDBError(f"{self.path}: no identity with {column} {identity!r} ({len(self)} enrolled)")
        try:
            with conn:
                conn.execute("DELETE FROM identities WHERE id = ?", (row[0],))
                self._index.remove_ids(np.array([row[0]], np.int64))
                _write_index(self._index, index_path(self.path))
        except BaseException:
            self._index = self._build_index()
            raise
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
        if len(self) == 0:
            raise IdentityDBError(f"{self.path}: the database is empty; enrol identities before searching")
        scores, ids = self._index.search(queries, min(int(k), len(self)))
        found = np.unique(ids[ids >= 0]).tolist()
        names = dict(conn.execute(f"SELECT id, name FROM identities WHERE id IN ({','.join('?' * len(found))})",
                                  found).fetchall())
        results = [[Match(int(i), names[int(i)], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
                   for row_s, row_i in zip(scores, ids)]
        return results[0] if single else results

    def identify(self, query: np.ndarray, threshold: float, *, model_id: str) -> Match:
        """Open-set answer for one query (D,): the best match if its score >= ``threshold``,
        else ``Match(None, "unknown", best score)``."""
        if np.ndim(query) != 1:
            raise ValueError(f"identify takes one query of shape (D,), got shape {np.shape(query)}; use search for many")
        best = self.search(query, 1, model_id=model_id)[0]
        return best if best.score >= threshold else Match(None, UNKNOWN, best.score)
