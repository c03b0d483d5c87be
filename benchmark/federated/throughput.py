"""Speed of the encrypted federation, each figure against its reference in the same process.

* :func:`encrypt_throughput`: values/s an institution seals (finite check, CKKS encryption, serialization,
  digest and key fingerprint: :meth:`~benchmark.federated.encryption.InstitutionCipher.seal`) vs raw
  TenSEAL encrypting and serializing the same values (``ts.ckks_vector(ctx, v).serialize()``), which is
  the least any TenSEAL user must do to send them. Runs alternate (raw, ours, ...) after one untimed
  warm-up; medians are compared. Target ratio >= 0.8.
* :func:`he_vs_training`: HE seconds per round (encrypt + aggregate + decrypt, all parties) divided by
  local training seconds per round (all institutions), per encrypted mode, from a stage's metrics.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import tenseal as ts

from benchmark.config import CkksConfig
from benchmark.federated import ckks
from benchmark.federated.encryption import InstitutionCipher


def encrypt_throughput(values: int, cfg: CkksConfig, repeats: int = 3, seed: int = 0) -> dict:
    """Values/s of ours and of raw TenSEAL on a float64 (``values``,) vector; returns both medians,
    their ``ratio`` and the per-repeat figures."""
    vector = np.random.default_rng(seed).normal(0.0, 0.01, values)
    keys = ckks.key_pair(cfg)
    cipher = InstitutionCipher("benchmark", ckks.secret_bytes(keys), None)
    cipher.seal(vector[:16])
    ts.ckks_vector(keys, vector[:16]).serialize()
    ours, raw = [], []
    for _ in range(repeats):
        tick = time.perf_counter()
        ts.ckks_vector(keys, vector).serialize()
        raw.append(values / (time.perf_counter() - tick))
        tick = time.perf_counter()
        cipher.seal(vector)
        ours.append(values / (time.perf_counter() - tick))
    a, b = statistics.median(ours), statistics.median(raw)
    return {"values_per_second": a, "tenseal_values_per_second": b, "ratio": a / b, "runs": ours, "tenseal_runs": raw, "values": values}


def he_vs_training(metrics: dict) -> dict:
    """Per encrypted mode in ``metrics`` (the federated stage's): median over rounds of HE seconds and of
    local training seconds, and their ratio."""
    out = {}
    for mode in ("third_party", "blind"):
        if mode in metrics:
            m = metrics[mode]
            he = np.asarray(m["encrypt_seconds"]) + np.asarray(m["aggregate_seconds"]) + np.asarray(m["decrypt_seconds"])
            train = float(np.median(m["train_seconds"]))
            out[mode] = {"he_seconds": float(np.median(he)), "train_seconds": train, "ratio": float(np.median(he)) / train}
    return out
