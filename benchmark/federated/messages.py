"""How sealed updates travel in Flower messages (flwr 1.42 Message API).

A :class:`~benchmark.federated.ckks.Sealed` goes as an ArrayRecord ``"sealed"`` holding the bytes as one
uint8 array (Flower splits large arrays into chunks on the wire) and a ConfigRecord ``"seal"`` with the
digest, key fingerprint, number of values, the declared weight, the sender's name and the sender's Ed25519
signature over all of them (:mod:`benchmark.federated.identity`). :func:`open_signed` verifies the signature
under the sender's roster key before anything is used.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from benchmark.federated.ckks import CiphertextError, Sealed
from benchmark.federated.identity import Roster, Signer


def put_sealed(content: RecordDict, sealed: Sealed, weight: float, signer: Signer, kind: str, server_round: int,
               slot: str = "") -> RecordDict:
    """Add ``sealed`` (declared ``weight``) to ``content``, signed by ``signer`` as a ``kind`` payload of
    ``server_round``, under the records ``slot + "sealed"`` and ``slot + "seal"`` (a message may carry several);
    returns ``content``."""
    content[f"{slot}sealed"] = ArrayRecord({"data": Array(np.frombuffer(sealed.data, np.uint8))})
    content[f"{slot}seal"] = ConfigRecord(
        {"digest": sealed.digest, "key_id": sealed.key_id, "values": sealed.values, "weight": float(weight),
         "sender": signer.name, "signature": signer.sign(kind, server_round, sealed, weight)}
    )
    return content


def open_signed(content: RecordDict, sender: str, roster: Roster, kind: str, server_round: int,
                slot: str = "") -> tuple[Sealed, float]:
    """(sealed, declared weight) of a ``kind`` payload of ``server_round`` that ``sender`` signed (under ``slot``, as
    :func:`put_sealed` put it); CiphertextError
    naming ``sender`` when there is none, when it is unsigned or its signature does not verify under ``sender``'s
    roster key. The bytes are then checked against the signed digest by whoever opens them
    (:func:`~benchmark.federated.ckks.check_transport`, in the workflow and the institution's cipher)."""
    if f"{slot}sealed" not in content or f"{slot}seal" not in content:
        raise CiphertextError(f"the message from {sender} carries no sealed {kind} of round {server_round}")
    meta = content[f"{slot}seal"]
    data = content[f"{slot}sealed"]["data"].numpy().tobytes()
    sealed, weight = Sealed(data, str(meta["digest"]), str(meta["key_id"]), int(meta["values"])), float(meta["weight"])
    signature = meta["signature"] if "signature" in meta else None
    roster.verify(kind, server_round, sender, sealed, weight, bytes(signature) if signature else None)
    return sealed, weight

