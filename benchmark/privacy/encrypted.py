"""What the attacker holds under CKKS encryption: ciphertext bytes and a public context, nothing to invert.

The aggregation server in ``blind`` mode, and anyone on the wire in ``third_party`` mode, holds an
update only as TenSEAL CKKS ciphertext (Cheon et al. 2017) plus the public context (public key, no
secret key) it was encrypted under. :func:`attacker_view` records, as facts measured on the actual
bytes, that (1) the public context holds no secret key and TenSEAL refuses to decrypt, and (2) a key
pair the attacker makes itself with the same parameters decrypts the ciphertext to noise. Gradient
inversion needs the plaintext update, so it has no input. (The third party in ``third_party`` mode
holds its own secret key and sees every update in the clear: that is :func:`leakage_report`'s case.)
"""

from __future__ import annotations

import numpy as np
import tenseal as ts


def attacker_view(
    ciphertext: bytes, public_context: bytes, own_key_pair: bytes | None = None, plaintext: np.ndarray | None = None
) -> dict:
    """What an attacker learns from a serialized CKKS vector ``ciphertext`` and the serialized
    ``public_context`` it was made under.

    own_key_pair: optionally, a serialized context with a secret key that the attacker generated
                  itself (same CKKS parameters, different key); plaintext: optionally, the true (V,)
                  values, to measure how far the attacker's decryption is from them.
    Returns ``ciphertext_bytes``, ``context_has_secret_key`` (bool), ``decrypted`` (False when TenSEAL
    refused), ``decrypt_error`` (its message); with ``own_key_pair`` and ``plaintext`` also
    ``own_key_relative_error`` = ||decrypted - plaintext|| / ||plaintext||.
    """
    ctx = ts.context_from(public_context)
    vec = ts.ckks_vector_from(ctx, ciphertext)
    view = {"ciphertext_bytes": len(ciphertext), "context_has_secret_key": bool(ctx.is_private())}
    try:
        values = np.asarray(vec.decrypt(), np.float64)
        view.update(decrypted=True, decrypt_error="")
    except ValueError as err:
        values = None
        view.update(decrypted=False, decrypt_error=str(err))
    if plaintext is not None and values is not None:
        view["relative_error"] = _relative_error(values, plaintext)
    if own_key_pair is not None and plaintext is not None:
        own = ts.context_from(own_key_pair)
        guess = np.asarray(ts.ckks_vector_from(own, ciphertext).decrypt(own.secret_key()), np.float64)
        view["own_key_relative_error"] = _relative_error(guess, plaintext)
    return view


def _relative_error(values: np.ndarray, plaintext: np.ndarray) -> float:
    truth = np.asarray(plaintext, np.float64).ravel()
    if values.shape != truth.shape:
        raise ValueError(f"plaintext has {truth.size} values, the ciphertext {values.size}")
    return float(np.linalg.norm(values - truth) / max(np.linalg.norm(truth), 1e-300))
