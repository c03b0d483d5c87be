"""Which global model an institution holds, so that one that missed a round or restarted is named and resynced.

The server cannot read the global model in the encrypted modes, so the model is named by its history: its round
``r`` and a hash chain, ``chain(0)`` the BLAKE2b of the preset vector every institution starts from and
``chain(r) = BLAKE2b(chain(r - 1), digest of round r's sealed sum)``. Every institution that applied the same
sums in the same order holds the same chain, bit for bit on any machine, and the server computes it from the sums
it sent. Each train message carries the federation's round and chain (``sync``) and the sums the institution has
not applied yet, as the server last heard (``replay``; for an institution without a model, the preset vector and
every sum); the institution applies the ones it lacks, each under the server's signature for its own round, and
refuses to train unless it then holds the federation's model (:class:`StaleModel`, naming what it holds). The
server keeps every round's sealed sum for that (the size of one sum a round).
"""

from __future__ import annotations

import hashlib

import numpy as np


class StaleModel(RuntimeError):
    """An institution does not hold the model a message needs (it missed a round, or restarted without one)."""


def initial_chain(vector: np.ndarray) -> str:
    """``chain(0)``: the BLAKE2b-256 hex of the preset vector's float32 bytes."""
    return hashlib.blake2b(np.asarray(vector, dtype=np.float32).tobytes(), digest_size=32).hexdigest()


def next_chain(previous: str, sum_digest: str) -> str:
    """``chain(r)`` from ``chain(r - 1)`` and the digest of round r's sealed sum."""
    return hashlib.blake2b(f"{previous}:{sum_digest}".encode(), digest_size=32).hexdigest()


def is_stale(reason: str) -> bool:
    """Whether an error reply's reason is a :class:`StaleModel` (Flower carries the exception's name in it)."""
    return StaleModel.__name__ in reason
