"""TenSEAL CKKS (Cheon, Kim, Kim & Song 2017, "Homomorphic Encryption for Arithmetic of Approximate
Numbers") for the encrypted federated modes: key pairs, public contexts, encryption and decryption of
float vectors, and the checks that turn a bad ciphertext into an error that names its sender.

A *key pair* is a TenSEAL context holding the secret key; its *public context* (``public_bytes``) holds
the public key only (no secret, relinearization or Galois keys: aggregation only adds ciphertexts), so
whoever holds it can encrypt but never decrypt (``is_private()`` is false). A vector longer than one
ciphertext's N/2 slots is split over several ciphertexts by TenSEAL; the serialized bytes hold them all.

Every sealed vector travels with a BLAKE2b digest of its bytes (corruption and truncation in transit)
and the fingerprint of the public key it was made under (a sender on a stale or foreign key); the
receiver checks both before it deserializes, and :func:`decrypt` reports a ciphertext that does not
decrypt under the receiver's key.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import tenseal as ts

from benchmark.config import CkksConfig
from benchmark.io import atomic_path


class CiphertextError(ValueError):
    """A ciphertext (or plaintext update) was rejected; the message names its sender and why."""


@dataclass(frozen=True)
class Sealed:
    """What travels: ``data`` (serialized CKKS vector, or float32 bytes in plaintext mode), its
    ``digest`` (BLAKE2b-256 hex), the ``key_id`` it was made under ("" in plaintext) and ``values``."""

    data: bytes
    digest: str
    key_id: str
    values: int


def digest(data: bytes) -> str:
    """BLAKE2b-256 of ``data`` as hex (about 1 GB/s: ~0.1 s for a 75 MB ciphertext)."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def key_pair(cfg: CkksConfig) -> ts.Context:
    """A fresh CKKS context with a secret key, N = ``poly_modulus_degree``, the modulus chain
    ``coeff_mod_bit_sizes`` and scale 2**``scale_bits``."""
    bits = [int(b) for b in cfg.coeff_mod_bit_sizes.split("-")]
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, cfg.poly_modulus_degree, coeff_mod_bit_sizes=bits)
    ctx.global_scale = 2.0**cfg.scale_bits
    return ctx


def public_bytes(ctx: ts.Context) -> bytes:
    """The public context of ``ctx``: encryption only, no secret/relinearization/Galois keys."""
    return ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False)


def load_context(data: bytes) -> ts.Context:
    """A context from ``public_bytes`` or ``secret_bytes``."""
    return ts.context_from(data)


def secret_bytes(ctx: ts.Context) -> bytes:
    """The whole key pair (secret key included), for the party that owns it and nobody else."""
    return ctx.serialize(save_public_key=True, save_secret_key=True, save_galois_keys=False, save_relin_keys=False)


def key_id(ctx: ts.Context) -> str:
    """Fingerprint of ``ctx``'s public key (BLAKE2b of its public context), 16 hex characters."""
    return digest(public_bytes(ctx))[:16]


def encrypt(ctx: ts.Context, vector: np.ndarray) -> Sealed:
    """Encrypt a float (V,) vector under ``ctx``'s public key."""
    data = ts.ckks_vector(ctx, np.asarray(vector, np.float64)).serialize()
    return Sealed(data, digest(data), key_id(ctx), int(len(vector)))


def check_transport(sealed: Sealed, sender: str, expected_key_id: str) -> None:
    """Raise :class:`CiphertextError` naming ``sender`` if ``sealed`` was corrupted or truncated in transit
    (digest mismatch) or made under another key than ``expected_key_id`` ("" skips the key check)."""
    if digest(sealed.data) != sealed.digest:
        raise CiphertextError(
            f"ciphertext from {sender} is corrupted or truncated ({len(sealed.data)} bytes; digest mismatch)"
        )
    if expected_key_id and sealed.key_id != expected_key_id:
        raise CiphertextError(
            f"ciphertext from {sender} was made under key {sealed.key_id or '(none)'}, "
            f"expected {expected_key_id}: wrong key/context"
        )


def load_vector(ctx: ts.Context, sealed: Sealed, sender: str) -> ts.CKKSVector:
    """Deserialize ``sealed`` against ``ctx``; unparseable or parameter-mismatched data raises CiphertextError."""
    try:
        vec = ts.ckks_vector_from(ctx, sealed.data)
    except (ValueError, RuntimeError) as err:
        raise CiphertextError(f"ciphertext from {sender} cannot be read under this context: {err}") from err
    if vec.size() != sealed.values:
        raise CiphertextError(f"ciphertext from {sender} holds {vec.size()} values, declared {sealed.values}")
    return vec


def decrypt(ctx: ts.Context, vec: ts.CKKSVector, sender: str) -> np.ndarray:
    """Decrypt with ``ctx``'s secret key -> float64 (V,). A context without a secret key raises
    CiphertextError; so does a result that is not finite."""
    if not ctx.is_private():
        raise CiphertextError(f"cannot decrypt the ciphertext from {sender}: this context holds no secret key")
    out = np.asarray(vec.decrypt(ctx.secret_key()), np.float64)
    if not np.isfinite(out).all():
        raise CiphertextError(f"ciphertext from {sender} decrypts to non-finite values: wrong key/context")
    return out


class Stopwatch:
    """Accumulates seconds per named phase: ``with watch("encrypt"): ...``; ``watch.seconds[name]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._name = ""
        self._start = 0.0

    def __call__(self, name: str) -> "Stopwatch":
        self._name = name
        return self

    def __enter__(self) -> "Stopwatch":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds[self._name] = self.seconds.get(self._name, 0.0) + time.perf_counter() - self._start


def write_key_pair(path: str, cfg: CkksConfig) -> None:
    """Generate the institutions' shared key pair and write it (secret key included) to ``path``, the
    file each institution's SuperNode reads (``node_config["keys"]``); it never goes to the server."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(secret_bytes(key_pair(cfg)))
