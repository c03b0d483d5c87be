"""The ``federated`` stage: every mode of ``federated.modes`` on the data stage's institutions.

Federated modes (``third_party``, ``blind``, ``plaintext``) run the Flower ServerApp and one ClientApp
per institution (``data.protocol.institutions``) in this process (:mod:`benchmark.federated.grid`);
each is a real run from the same preset parameters and seeds. ``centralized`` trains on the union of the
institutions' images (:mod:`benchmark.federated.centralized`). The parties' credentials (CKKS key pairs,
Ed25519 signing keys and their roster: :mod:`benchmark.federated.credentials`) are generated in a temporary
folder that is deleted afterwards.

Writes (atomically):

* ``<artifacts>/models/federated_<mode>.pt``: the final shared network (meta: ``verification``, mode);
* ``<reports>/metrics/federated.json``: per mode ``verification`` (accuracy_mean, accuracy_std, auc,
  eer, tar_at_far_1e-2, tar_at_far_1e-3, threshold) and per-round ``accuracy``; for the encrypted modes
  per-round ``encrypt_seconds``, ``aggregate_seconds``, ``decrypt_seconds``, ``bytes_sent``,
  ``bytes_received``, ``bytes_plaintext``; for every federated mode per-round ``train_seconds``,
  ``round_wall_seconds``, ``bytes_on_wire``, ``rejected`` (updates the server refused, by sender, with the
  reason), ``refused`` (institutions that refused the round's sum, with the reason) and ``resynced`` (institutions
  that got a missed sum, the preset model or the setup again: :mod:`benchmark.federated.sync`), ``dp_epsilon`` (null
  when ``federated.dp`` is off, else :func:`benchmark.federated.dp.epsilon_record`) and ``server_holds_secret_key``;
  ``deployment`` (:func:`add_deployment`: the measurement in Flower's deployment mode, when there is one); ``targets``;
  ``keys`` (:func:`key_evidence`);
  ``privacy``;
* ``<reports>/plots/federated_rounds.json``: accuracy per round and mode (for ``dvc plots``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from benchmark import config, io
from benchmark.config import ENCRYPTED_MODES, CkksConfig, DPConfig, Params
from benchmark.errors import ConfigError
from benchmark.federated import ckks, dp, local
from benchmark.federated.ckks import CiphertextError
from benchmark.federated.encryption import InstitutionCipher, create_workflow
from benchmark.federated.centralized import run_centralized
from benchmark.federated.client_app import make_client_app
from benchmark.federated.credentials import Credentials, write_credentials
from benchmark.federated.evidence import privacy_evidence
from benchmark.federated.grid import FIRST_NODE_ID, run_local
from benchmark.federated.server_app import make_server_app
from benchmark.models.checkpoint import save_model
from benchmark.models.face_model import FaceModel
from benchmark.train.recipe import val_pairs, validation_meta

COSTS = ("encrypt_seconds", "aggregate_seconds", "decrypt_seconds", "bytes_sent", "bytes_received", "bytes_plaintext")


@dataclass
class FederatedRun:
    """One mode's final model, per-round rows, and (federated modes) whether the server held a secret key
    and institution 0's private head (its state dict)."""

    model: FaceModel
    rounds: list[dict]
    server_holds_secret_key: bool | None
    seconds: float
    head_state: dict | None = None


def run_mode(mode: str, params: Params, workdir: Path, progress: bool = True, mods: list | None = None,
             creds: Credentials | None = None) -> FederatedRun:
    """Run one federated mode in process; ``workdir`` holds the params file and the history, and the credentials
    (:func:`~benchmark.federated.credentials.write_credentials`) unless ``creds`` are given."""
    start = time.perf_counter()
    if mode == "centralized":
        model, rows = run_centralized(params, progress)
        return FederatedRun(model, rows, None, time.perf_counter() - start)
    params_file, out = workdir / "params.yaml", workdir / f"{mode}.json"
    params_file.write_text(yaml.safe_dump(config.as_dict(params)))
    k = params.data.protocol.institutions
    creds = creds or write_credentials(workdir / "credentials", k, params.federated.ckks)
    nodes = [creds.node_config(i, mode) for i in range(k)]
    grid = run_local(make_server_app(progress), make_client_app(mods), nodes, creds.run_config(params_file, mode, out))
    history = json.loads(out.read_text())
    data = local.dataset(params)
    model = local.new_model(params, data.geometry)
    holder = next(c for c in grid.contexts.values() if "fb.global" in c.state)
    local.load_shared_vector(model, holder.state["fb.global"]["vector"].numpy())
    first = grid.contexts[FIRST_NODE_ID].state
    head = first["fb.head"].to_torch_state_dict() if "fb.head" in first else None
    return FederatedRun(model.eval(), history["rounds"], history["server_holds_secret_key"], time.perf_counter() - start, head)


def mode_metrics(mode: str, result: FederatedRun, data: local.Dataset, privacy: DPConfig) -> dict:
    """The metrics contract of one mode (``privacy``: the institutions' differential privacy it ran with)."""
    out = {"verification": local.verify(result.model, data), "accuracy": [r["accuracy"] for r in result.rounds]}
    if mode != "centralized":
        keys = COSTS if mode in ENCRYPTED_MODES else ("bytes_sent", "bytes_received", "bytes_plaintext")
        out.update({k: [r[k] for r in result.rounds] for k in keys})
        out.update({k: [r[k] for r in result.rounds] for k in ("round_wall_seconds", "bytes_on_wire", "rejected", "refused", "resynced")})
        out["dp_epsilon"] = dp.epsilon_record(privacy, len(result.rounds))
        out["server_holds_secret_key"] = result.server_holds_secret_key
    out["train_seconds"] = [r["train_seconds"] for r in result.rounds]
    out["seconds"] = round(result.seconds, 2)
    return out


def targets(metrics: dict) -> dict:
    """Encrypted modes within 0.5 points of plaintext FedAvg; federated within 3 points of centralized."""
    acc = {m: v["verification"]["accuracy_mean"] for m, v in metrics.items()}
    out = {}
    for m in ENCRYPTED_MODES:
        if m in acc and "plaintext" in acc:
            gap = 100 * abs(acc[m] - acc["plaintext"])
            out[f"{m}_vs_plaintext_points"] = {"value": round(gap, 3), "target": 0.5, "met": gap <= 0.5}
    if "centralized" in acc:
        for m in ("plaintext", *ENCRYPTED_MODES):
            if m in acc:
                gap = 100 * (acc["centralized"] - acc[m])
                out[f"{m}_vs_centralized_points"] = {"value": round(gap, 3), "target": 3.0, "met": gap <= 3.0}
    return out


def key_evidence(cfg: CkksConfig) -> dict:
    """Who can decrypt what, shown on fresh keys: the blind server's context and the third party's public
    context hold no secret key (decryption fails), and the third party's key cannot read the sum it
    re-encrypted for the institutions."""
    institutions = InstitutionCipher("institution 0", ckks.secret_bytes(ckks.key_pair(cfg)), None)
    blind, third_party = create_workflow("blind", cfg), create_workflow("third_party", cfg)
    blind.set_institutions_context(institutions.public_context())
    third_party.set_institutions_context(institutions.public_context())
    server_view = ckks.load_context(institutions.public_context())
    sealed = institutions.seal(np.array([0.25, -1.5, 1.0]))
    try:
        ckks.decrypt(server_view, ckks.load_vector(server_view, sealed, "institution 0"), "institution 0")
        blind_error = ""
    except CiphertextError as err:
        blind_error = str(err)
    return {
        "blind_server_holds_secret_key": blind.holds_secret_key,
        "blind_server_context_is_private": server_view.is_private(),
        "blind_server_decrypt_attempt": blind_error,
        "third_party_holds_secret_key": third_party.holds_secret_key,
        "third_party_public_context_is_private": ckks.load_context(third_party.public_context()).is_private(),
        "institutions_hold_secret_key": institutions.keys.is_private(),
    }


def add_deployment(metrics: dict, params: Params) -> None:
    """Add ``make fl-deploy``'s measurement (``paths.federated_deployment``, when it exists) under each measured mode
    as ``deployment``, with its command, date and whether it ran this run's ``federated`` settings."""
    path = Path(params.paths.federated_deployment)
    if not path.is_file():
        return
    measured = json.loads(path.read_text())
    same = measured["federated"] == json.loads(json.dumps(config.as_dict(params.federated)))
    for mode, rows in measured["modes"].items():
        if mode in metrics:
            metrics[mode]["deployment"] = {**rows, "command": measured["command"], "date": measured["date"],
                                           "same_settings": same}


def run(params: Params, progress: bool = True) -> dict:
    """Run every mode of ``federated.modes``, the privacy evidence (on the plaintext run, or the first
    federated mode's), write models, metrics and plot data; returns ``{"metrics": ..., "models": {mode:
    FaceModel}, "privacy": the leakage report or None}``."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    if params.federated.min_institutions > params.data.protocol.institutions:
        raise ConfigError(
            f"'federated.min_institutions' = {params.federated.min_institutions} exceeds "
            f"'data.protocol.institutions' = {params.data.protocol.institutions}: no round could reach the quorum"
        )
    data = local.dataset(params)
    artifacts, reports = Path(params.paths.artifacts), Path(params.paths.reports)
    metrics, models, heads = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="facebench-federated-") as tmp:
        creds = write_credentials(Path(tmp) / "credentials", params.data.protocol.institutions, params.federated.ckks)
        for mode in params.federated.modes.split("-"):
            result = run_mode(mode, params, Path(tmp), progress, creds=creds)
            metrics[mode] = mode_metrics(mode, result, data, params.federated.dp)
            models[mode] = result.model
            if result.head_state is not None:
                heads[mode] = result.head_state
            meta = {"stage": "federated", "mode": mode, "config": config.as_dict(params.federated), "seed": params.seed,
                    "verification": metrics[mode]["verification"], "rounds": params.federated.rounds,
                    "validation": validation_meta(result.model, val_pairs(data))}
            save_model(result.model, artifacts / "models" / f"federated_{mode}.pt", meta)
    add_deployment(metrics, params)
    out = {**metrics, "institutions": params.data.protocol.institutions, "rounds": params.federated.rounds,
           "local_epochs": params.federated.local_epochs, "params": int(len(local.shared_vector(next(iter(models.values()))))),
           "targets": targets(metrics), "keys": key_evidence(params.federated.ckks)}
    attacked = "plaintext" if "plaintext" in heads else next(iter(heads), None)
    evidence = privacy_evidence(params, models[attacked], heads[attacked], progress) if attacked else None
    if evidence:
        out["privacy"] = {**evidence["metrics"], "attacked_mode": attacked}
    io.write_json(reports / "metrics" / "federated.json", out)
    rows = [{"round": r + 1, **{m: metrics[m]["accuracy"][r] for m in metrics}} for r in range(params.federated.rounds)]
    io.write_json(reports / "plots" / "federated_rounds.json", rows)
    return {"metrics": out, "models": models, "privacy": evidence["report"] if evidence else None}

