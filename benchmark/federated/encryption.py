"""Encryption workflows: how packed updates (:mod:`benchmark.federated.aggregation`) travel and who can
read them. One server-side workflow per mode, registered in :data:`WORKFLOWS`, and the institution side
(:class:`InstitutionCipher`) that matches it.

* ``third_party`` (the "knowledge federation" source's design): institutions encrypt with the third
  party's public context; the third party decrypts each update with its secret key, checks it, sums the
  packed updates in plaintext and re-encrypts the sum under the institutions' public context, so only
  institutions (holders of their shared secret key) can decrypt the result. The third party sees every
  individual plaintext update.
* ``blind``: institutions share one key pair and encrypt with it; the server holds only the
  institutions' *public* context, adds the ciphertexts homomorphically and never holds a secret key,
  so it never sees any single update (nor the sum).
* ``plaintext``: FedAvg without encryption (the reference), float32 on the wire.

A server-side workflow's :meth:`Workflow.aggregate` takes the round's contributions and returns the
sealed sum for the institutions, the contributions it rejected (each naming its sender and why) and the
seconds it spent decrypting, aggregating and encrypting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.config import CkksConfig
from benchmark.federated import ckks
from benchmark.federated.aggregation import AggregationRule
from benchmark.federated.ckks import CiphertextError, Sealed, Stopwatch
from benchmark.models.registry import Registry

WORKFLOWS = Registry("encryption workflow")
SERVER = "the server"


@dataclass(frozen=True)
class Contribution:
    """One institution's reply: its name, its sealed packed update and its declared weight."""

    sender: str
    sealed: Sealed
    weight: float


@dataclass
class Aggregate:
    """The sealed sum for the institutions, its total weight, who was accepted or rejected (with the
    reason), and seconds per phase (``decrypt``, ``aggregate``, ``encrypt``)."""

    sealed: Sealed
    weight: float
    accepted: list[str]
    rejected: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)


def plain_seal(vector: np.ndarray) -> Sealed:
    """float (V,) -> float32 bytes with their digest (plaintext mode)."""
    data = np.asarray(vector, np.float32).tobytes()
    return Sealed(data, ckks.digest(data), "", int(len(vector)))


def plain_open(sealed: Sealed, sender: str) -> np.ndarray:
    """Plaintext bytes -> float64 (V,); wrong length or non-finite values raise CiphertextError naming ``sender``."""
    if len(sealed.data) != 4 * sealed.values:
        raise CiphertextError(f"update from {sender} has {len(sealed.data)} bytes, expected {4 * sealed.values}")
    vec = np.frombuffer(sealed.data, np.float32).astype(np.float64)
    check_finite(vec, sender)
    return vec


def check_finite(vector: np.ndarray, sender: str) -> None:
    """Raise CiphertextError naming ``sender`` if ``vector`` holds NaN or infinite values."""
    bad = int((~np.isfinite(vector)).sum())
    if bad:
        raise CiphertextError(f"update from {sender} holds {bad} non-finite values (NaN/inf); rejected")


class RefusedRequest(ValueError):
    """An institution refuses what the server asked of it: another mode, or another key, than its node config's."""


def check_request(name: str, own_mode: str, requested_mode: str, recipient: bytes | None, trusted_key_id: str) -> None:
    """Raise :class:`RefusedRequest` (naming institution ``name``, what it agreed to and what the server asked) unless
    the server asks for ``own_mode``, and, in ``third_party`` mode, for encryption under the key whose fingerprint
    is ``trusted_key_id``; in the other modes the server must name no recipient key at all (a blind server
    slipping in its own public key would otherwise read every update)."""
    if requested_mode != own_mode:
        raise RefusedRequest(f"{name} is configured for mode {own_mode!r} (its node config), but the server asked for "
                             f"{requested_mode!r}; refusing to send any update")
    found = ckks.key_id(ckks.load_context(recipient)) if recipient else ""
    if own_mode == "third_party" and found != trusted_key_id:
        raise RefusedRequest(f"{name} trusts the third party's key {trusted_key_id} (its node config), but the server "
                             f"asked it to encrypt for key {found or '(none)'}; refusing to send any update")
    if own_mode != "third_party" and found:
        raise RefusedRequest(f"{name} in mode {own_mode!r} encrypts for no one but the institutions, but the server "
                             f"asked it to encrypt for key {found}; refusing to send any update")


class Workflow:
    """Server side of an encryption workflow. ``public_context()`` is what institutions encrypt with
    (None: their own key or no encryption); ``set_institutions_context`` gives it the institutions'
    public context; ``holds_secret_key`` says whether the server could decrypt anything."""

    name = ""
    encrypted = True

    def public_context(self) -> bytes | None:
        return None

    def set_institutions_context(self, public: bytes | None) -> None:
        """Receive the institutions' public context (encryption only)."""

    @property
    def holds_secret_key(self) -> bool:
        return False

    def aggregate(self, contributions: list[Contribution], rule: AggregationRule) -> Aggregate:
        """Check every contribution, sum the accepted ones; raise ValueError if none is left."""
        watch, accepted, rejected, parts = Stopwatch(), [], {}, []
        for c in contributions:
            try:
                with watch("aggregate"):
                    ckks.check_transport(c.sealed, c.sender, self._expected_key())
                parts.append(self._accept(c, watch))
                accepted.append(c)
            except (CiphertextError, ValueError) as err:
                rejected[c.sender] = str(err)
        if not parts:
            raise ValueError(f"no valid update to aggregate; rejected: {rejected}")
        with watch("aggregate"):
            total = rule.combine(parts)
        sealed = self._seal(total, watch)
        weight = float(sum(c.weight for c in accepted))
        return Aggregate(sealed, weight, [c.sender for c in accepted], rejected, watch.seconds)

    def _expected_key(self) -> str:
        return ""

    def _accept(self, c: Contribution, watch: Stopwatch):
        raise NotImplementedError

    def _seal(self, total, watch: Stopwatch) -> Sealed:
        raise NotImplementedError


@WORKFLOWS.register("plaintext")
class Plaintext(Workflow):
    """FedAvg in the clear: the server reads and sums float32 updates."""

    name, encrypted = "plaintext", False

    def __init__(self, cfg: CkksConfig | None = None, keys: bytes | None = None) -> None:
        del cfg, keys

    def _accept(self, c: Contribution, watch: Stopwatch) -> np.ndarray:
        with watch("aggregate"):
            vec = plain_open(c.sealed, c.sender)
            AggregationRule.unpack(vec, c.weight, c.sender)
        return vec

    def _seal(self, total: np.ndarray, watch: Stopwatch) -> Sealed:
        with watch("aggregate"):
            return plain_seal(total)


@WORKFLOWS.register("third_party")
class ThirdParty(Workflow):
    """The third party: owns a CKKS key pair (``keys``, its serialized secret context, whose fingerprint the
    institutions were given; a fresh one when None); decrypts, checks and sums, re-encrypts for the institutions."""

    name = "third_party"

    def __init__(self, cfg: CkksConfig, keys: bytes | None = None) -> None:
        self._keys = ckks.key_pair(cfg) if keys is None else ckks.load_context(keys)
        if not self._keys.is_private():
            raise ValueError("the third party's key file holds no secret key; it could not decrypt the updates")
        self._institutions = None

    def public_context(self) -> bytes:
        return ckks.public_bytes(self._keys)

    def set_institutions_context(self, public: bytes | None) -> None:
        ctx = ckks.load_context(public)
        if ctx.is_private():
            raise ValueError("the institutions sent a context holding their secret key; the third party refuses it")
        self._institutions = ctx

    @property
    def holds_secret_key(self) -> bool:
        return self._keys.is_private()

    def _expected_key(self) -> str:
        return ckks.key_id(self._keys)

    def _accept(self, c: Contribution, watch: Stopwatch) -> np.ndarray:
        with watch("aggregate"):
            vec = ckks.load_vector(self._keys, c.sealed, c.sender)
        with watch("decrypt"):
            plain = ckks.decrypt(self._keys, vec, c.sender)
        with watch("aggregate"):
            check_finite(plain, c.sender)
            AggregationRule.unpack(plain, c.weight, c.sender)
        return plain

    def _seal(self, total: np.ndarray, watch: Stopwatch) -> Sealed:
        if self._institutions is None:
            raise ValueError("the third party has no public context of the institutions to re-encrypt with")
        with watch("encrypt"):
            return ckks.encrypt(self._institutions, total)


@WORKFLOWS.register("blind")
class Blind(Workflow):
    """The blind aggregator: holds the institutions' public context only and adds ciphertexts."""

    name = "blind"

    def __init__(self, cfg: CkksConfig, keys: bytes | None = None) -> None:
        if keys is not None:
            raise ValueError("the blind server holds no key of its own")
        del cfg
        self._institutions = None

    def set_institutions_context(self, public: bytes | None) -> None:
        ctx = ckks.load_context(public)
        if ctx.is_private():
            raise ValueError("the institutions sent a context holding their secret key; the blind server refuses it")
        self._institutions = ctx

    @property
    def holds_secret_key(self) -> bool:
        return self._institutions is not None and self._institutions.is_private()

    def _expected_key(self) -> str:
        return ckks.key_id(self._institutions)

    def _accept(self, c: Contribution, watch: Stopwatch):
        with watch("aggregate"):
            return ckks.load_vector(self._institutions, c.sealed, c.sender)

    def _seal(self, total, watch: Stopwatch) -> Sealed:
        with watch("aggregate"):
            data = total.serialize()
            return Sealed(data, ckks.digest(data), ckks.key_id(self._institutions), total.size())


def create_workflow(name: str, cfg: CkksConfig, keys: bytes | None = None) -> Workflow:
    """The server side of workflow ``name`` (plaintext, third_party, blind); ``keys``: the third party's key pair."""
    return WORKFLOWS.create(name, cfg=cfg, keys=keys)


class InstitutionCipher:
    """An institution's side. ``keys``: the institutions' shared key pair (secret included; None in
    plaintext mode); ``recipient``: the public context to encrypt for (the third party's in
    ``third_party``; None: the institutions' own key in ``blind``, no encryption in plaintext);
    ``name`` names the institution in errors."""

    def __init__(self, name: str, keys: bytes | None, recipient: bytes | None) -> None:
        self.name = name
        self.keys = ckks.load_context(keys) if keys is not None else None
        self.recipient = ckks.load_context(recipient) if recipient is not None else self.keys

    def public_context(self) -> bytes | None:
        """The institutions' public context (what they give the server)."""
        return ckks.public_bytes(self.keys) if self.keys is not None else None

    def seal(self, packed: np.ndarray) -> Sealed:
        """Check ``packed`` (finite, else CiphertextError naming this institution), then encrypt it for the
        recipient (float32 bytes in plaintext mode)."""
        check_finite(packed, self.name)
        return plain_seal(packed) if self.recipient is None else ckks.encrypt(self.recipient, packed)

    def open(self, sealed: Sealed) -> np.ndarray:
        """The server's sum -> float64 (V,): transport checks, then decryption with the institutions' key."""
        if self.keys is None:
            ckks.check_transport(sealed, SERVER, "")
            return plain_open(sealed, SERVER)
        ckks.check_transport(sealed, SERVER, ckks.key_id(self.keys))
        return ckks.decrypt(self.keys, ckks.load_vector(self.keys, sealed, SERVER), SERVER)
