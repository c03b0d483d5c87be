"""A cache of face detections keyed by image content, so a data set is detected once.

MTCNN costs tens of milliseconds an image (minutes for a few thousand photos on 2 cores), while a sweep of
``data.image_size`` or of the crop geometry needs the same detections again. The cache keeps every candidate
(box, confidence, 5 landmarks) of every image it has seen, keyed by the SHA-256 of the file's bytes and the
detector's settings (:attr:`~benchmark.data.detect.FaceDetector.settings`), in one SQLite file
(``<artifacts>/cache/detections.sqlite``). It only ever returns what MTCNN returned for the same bytes and
settings, so a hit gives the stage exactly the result it would have computed; deleting the file is always safe.
Writes are transactions, so an interrupted run never leaves a half-written entry.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np

from benchmark.data.detect import Detection


class DetectionCache:
    """``get(key)`` / ``put(key, detections)`` over an SQLite table; ``key`` from :meth:`key`.

    The file (and its folder) is created on first use, so a run that fails before detecting anything (a missing
    data folder) leaves nothing behind.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60)
            self._conn.execute("CREATE TABLE IF NOT EXISTS detections (key TEXT PRIMARY KEY, faces TEXT NOT NULL)")
            self._conn.commit()
        return self._conn

    @staticmethod
    def key(digest: str, settings: str) -> str:
        """The cache key of one file's SHA-256 ``digest`` under detector ``settings``."""
        return f"{digest}|{settings}"

    def get(self, key: str) -> list[Detection] | None:
        """The cached candidates of ``key`` (possibly empty: no face), or None when never seen."""
        row = self._db.execute("SELECT faces FROM detections WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return [Detection(tuple(f["box"]), f["confidence"], np.asarray(f["landmarks"], dtype=np.float64))
                for f in json.loads(row[0])]

    def put(self, key: str, detections: list[Detection]) -> None:
        """Store the candidates of ``key`` (replacing any earlier entry) in one transaction."""
        faces = [{"box": list(d.box), "confidence": d.confidence, "landmarks": np.asarray(d.landmarks).tolist()}
                 for d in detections]
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO detections VALUES (?, ?)", (key, json.dumps(faces)))

    def __getstate__(self) -> dict:
        """A copy for another process (a detection worker) opens its own connection."""
        return {"path": self.path, "_conn": None}

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM detections").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "DetectionCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
