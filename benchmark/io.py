"""Atomic output writing: write to a temporary name beside the target, then rename.

An interrupted stage never leaves a half-written file that looks finished (DESIGN.md, convention 10).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def _temporary_beside(path: str | os.PathLike) -> Iterator[tuple[Path, Path]]:
    """(target, a new empty temporary file in the target's folder); the temporary name is removed on exit."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield target, tmp_path
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` if the block succeeds."""
    with _temporary_beside(path) as (target, tmp):
        yield tmp
        os.replace(tmp, target)


@contextlib.contextmanager
def exclusive_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; when the block succeeds, hard-link it as ``path`` only if
    nothing is there yet (FileExistsError otherwise): a complete file appears at once and never replaces another
    (two processes creating the same file: exactly one wins). The temporary name is removed either way."""
    with _temporary_beside(path) as (target, tmp):
        yield tmp
        os.link(tmp, target)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to an uncompressed ``.npz``, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
