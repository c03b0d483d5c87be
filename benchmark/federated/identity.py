"""Who sent a payload: Ed25519 signatures (``cryptography``) over everything a sealed payload declares.

Every party of a federation (each institution, and the server: the third party in ``third_party`` mode, the
aggregator otherwise) holds an Ed25519 signing key of its own in a PEM file that only it reads. The *roster*
(JSON, party name -> public key in hex) lists every party's verifying key; it is handed to every party out of
band with its node or run config, never taken from a message. A signed statement binds the payload's kind
(``keys``, ``update``, ``sum``), the round, the sender's name, the declared weight, number of values, CKKS key
id and the BLAKE2b digest of the bytes: whoever alters any of them, replays a payload in another round or
passes one kind off as another, or claims another party's name, fails :meth:`Roster.verify`, which names the
declared sender and the reason. The receiver checks the bytes against the signed digest afterwards
(:func:`~benchmark.federated.ckks.check_transport`), so the bytes are authenticated too.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from benchmark.federated.ckks import CiphertextError, Sealed
from benchmark.io import atomic_path

KINDS = ("keys", "update", "sum")


def statement(kind: str, server_round: int, sender: str, sealed: Sealed, weight: float) -> bytes:
    """The bytes a signature covers (module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown payload kind {kind!r}; one of {KINDS}")
    fields = {"kind": kind, "round": int(server_round), "sender": sender, "weight": repr(float(weight)),
              "values": int(sealed.values), "key_id": sealed.key_id, "digest": sealed.digest}
    return json.dumps(fields, sort_keys=True).encode()


class Signer:
    """A party's signing key (``name`` is the party's name in the roster), read from its PEM file."""

    def __init__(self, name: str, pem: Path) -> None:
        self.name = name
        key = serialization.load_pem_private_key(Path(pem).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{pem} holds no Ed25519 private key")
        self._key = key

    def sign(self, kind: str, server_round: int, sealed: Sealed, weight: float) -> bytes:
        return self._key.sign(statement(kind, server_round, self.name, sealed, weight))


class Roster:
    """Every party's verifying key, from the roster file (module docstring)."""

    def __init__(self, path: Path) -> None:
        raw = json.loads(Path(path).read_text())
        self.keys = {name: Ed25519PublicKey.from_public_bytes(bytes.fromhex(key)) for name, key in raw.items()}

    def verify(self, kind: str, server_round: int, sender: str, sealed: Sealed, weight: float,
               signature: bytes | None) -> None:
        """Raise :class:`~benchmark.federated.ckks.CiphertextError` naming ``sender`` unless ``signature`` is
        ``sender``'s signature of this payload."""
        if sender not in self.keys:
            raise CiphertextError(f"{kind} from {sender}: not a party of this federation (not in the roster)")
        if not signature:
            raise CiphertextError(f"{kind} from {sender} carries no signature; unsigned payloads are refused")
        try:
            self.keys[sender].verify(signature, statement(kind, server_round, sender, sealed, weight))
        except InvalidSignature:
            raise CiphertextError(f"{kind} from {sender}: the signature does not verify under {sender}'s key "
                                  f"(altered, replayed from another round, or not signed by {sender})") from None


def write_identities(folder: Path, parties: list[str]) -> tuple[dict[str, Path], Path]:
    """A fresh Ed25519 key for each of ``parties`` (PEM, readable by its owner only) and the roster of their
    public keys, in ``folder``; returns ({party: PEM path}, roster path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pems, public = {}, {}
    for name in parties:
        key = Ed25519PrivateKey.generate()
        pem = folder / f"{name.replace(' ', '_')}.pem"
        with atomic_path(pem) as tmp:
            tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
            tmp.chmod(0o600)
        pems[name] = pem
        public[name] = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    roster = folder / "roster.json"
    with atomic_path(roster) as tmp:
        tmp.write_text(json.dumps(public, indent=1, sort_keys=True))
    return pems, roster
