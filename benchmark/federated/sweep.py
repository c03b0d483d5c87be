"""Choosing the server momentum on validation identities: plaintext FedAvg(M) at each value and the centralized
reference, scored on the validation pairs (never the test pairs).

The institutions apply the server step (:mod:`benchmark.federated.server_step`) to what they decrypt, identically in
every mode, so plaintext FedAvg stands for the encrypted modes here (they match it within CKKS noise, which the
stage measures) and the sweep runs no encryption.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmark.config import Params
from benchmark.federated import local
from benchmark.federated.stage import run_mode
from benchmark.train.common import val_pair_accuracy
from benchmark.train.recipe import val_pairs


def momentum_sweep(params: Params, momenta: list[float], workdir: Path) -> dict:
    """Run plaintext FedAvg at each server momentum (``params``' rounds and server_lr otherwise) and the centralized
    reference once. Returns ``rows`` ({server_momentum, val_accuracy, seconds}), ``centralized`` ({val_accuracy,
    seconds}), ``val_pairs`` and ``choice`` (the momentum of the highest validation accuracy; the smaller on a tie)."""
    pairs = val_pairs(local.dataset(params))
    rows = []
    for beta in momenta:
        print(f"federated sweep: plaintext FedAvg, server momentum {beta:g} ({len(rows) + 1}/{len(momenta)})", flush=True)
        folder = workdir / f"momentum_{beta:g}"
        folder.mkdir(parents=True, exist_ok=True)
        setting = dataclasses.replace(params, federated=dataclasses.replace(params.federated, server_momentum=beta))
        run = run_mode("plaintext", setting, folder, progress=False)
        rows.append({"server_momentum": beta, "val_accuracy": val_pair_accuracy(run.model, pairs)[0],
                     "seconds": round(run.seconds, 1)})
    print("federated sweep: the centralized reference", flush=True)
    central = run_mode("centralized", params, workdir / "centralized", progress=False)
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["server_momentum"]))
    return {"rows": rows, "val_pairs": int(len(pairs.pairs)), "choice": best["server_momentum"],
            "centralized": {"val_accuracy": val_pair_accuracy(central.model, pairs)[0], "seconds": round(central.seconds, 1)}}
