"""How sealed updates travel in Flower messages (flwr 1.42 Message API).

A :class:`~benchmark.federated.ckks.Sealed` goes as an ArrayRecord ``"sealed"`` holding the bytes as one
uint8 array (Flower splits large arrays into chunks on the wire) and a ConfigRecord ``"seal"`` with the
digest, key fingerprint, number of values, the declared weight and the sender's name.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from benchmark.federated.ckks import CiphertextError, Sealed


def put_sealed(content: RecordDict, sealed: Sealed, weight: float, sender: str) -> RecordDict:
    """Add ``sealed`` (declared ``weight``, from ``sender``) to ``content``; returns it."""
    content["sealed"] = ArrayRecord({"data": Array(np.frombuffer(sealed.data, np.uint8))})
    content["seal"] = ConfigRecord(
        {"digest": sealed.digest, "key_id": sealed.key_id, "values": sealed.values, "weight": float(weight), "sender": sender}
    )
    return content


def get_sealed(content: RecordDict, sender: str) -> tuple[Sealed, float, str]:
    """(sealed, declared weight, declared sender) from ``content``; a message without one raises
    CiphertextError naming ``sender``."""
    if "sealed" not in content or "seal" not in content:
        raise CiphertextError(f"the message from {sender} carries no sealed update")
    meta = content["seal"]
    data = content["sealed"]["data"].numpy().tobytes()
    return Sealed(data, str(meta["digest"]), str(meta["key_id"]), int(meta["values"])), float(meta["weight"]), str(meta["sender"])

