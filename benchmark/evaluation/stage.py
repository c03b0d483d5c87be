"""The ``evaluate`` stage: every trained variant under one protocol.

For each variant in ``evaluate.variants`` it loads ``<artifacts>/models/<variant>.pt``
(:func:`~benchmark.models.checkpoint.load_model`) and its decision threshold (``meta["verification"]
["threshold"]``, saved by the training stages) and runs :func:`evaluate_variant`, which returns the
variant's dict (today: the robustness report; later stages of the protocol add their keys beside it).
Then the transfer matrix across all the variants.

Writes ``<reports>/metrics/robustness.json`` = ``{variant: {attack: {"eps_N": ..., "median_min_perturbation":
...}}}`` and ``<reports>/metrics/transfer.json`` = ``{"attack": "pgd_linf", "eps": N/255 as "eps_N",
"matrix": {source: {target: dodging_asr}}}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark import io
from benchmark.config import Params
from benchmark.evaluation.robustness_runner import robustness_report, transfer_matrix
from benchmark.models.checkpoint import load_model
from benchmark.models.face_model import FaceModel
from benchmark.train.stage import Dataset, load_dataset


@dataclass
class EvaluateResult:
    """robustness: {variant: {attack: ...}}; transfer: transfer.json's content; seconds: {variant: s}."""

    robustness: dict
    transfer: dict
    seconds: dict


def device_for(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; ``cpu`` / ``cuda`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_variant(params: Params, variant: str) -> tuple[FaceModel, float]:
    """The variant's model (on ``params.device``, eval mode) and its cosine decision threshold."""
    path = Path(params.paths.artifacts) / "models" / f"{variant}.pt"
    model = load_model(path).to(device_for(params.device))
    try:
        threshold = float(model.meta["verification"]["threshold"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"checkpoint '{path}' has no meta['verification']['threshold'] (saved by the training stages)") from err
    return model, threshold


def evaluate_variant(model: FaceModel, threshold: float, data: Dataset, params: Params, name: str = "") -> dict:
    """One variant's robustness report on the test pairs (see :func:`robustness_report`)."""
    p = data.protocol
    return robustness_report(
        model, data.images, p.pairs, p.is_same, threshold, params.evaluate.robustness, params.seed, desc=name or "robustness"
    )


def run(params: Params, data: Dataset | None = None) -> EvaluateResult:
    """Evaluate every variant, build the transfer matrix, write the metrics files."""
    data = data or load_dataset(params)
    models, thresholds, robustness, seconds = {}, {}, {}, {}
    for variant in params.evaluate.variants:
        models[variant], thresholds[variant] = load_variant(params, variant)
        start = time.perf_counter()
        robustness[variant] = evaluate_variant(models[variant], thresholds[variant], data, params, variant)
        seconds[variant] = round(time.perf_counter() - start, 2)
    cfg = params.evaluate.robustness
    matrix = transfer_matrix(models, data.images, data.protocol.pairs, data.protocol.is_same, thresholds, cfg, params.seed)
    transfer = {"attack": "pgd_linf", "eps": f"eps_{cfg.transfer_eps}", "steps": cfg.steps, "matrix": matrix}
    metrics = Path(params.paths.reports) / "metrics"
    io.write_json(metrics / "robustness.json", robustness)
    io.write_json(metrics / "transfer.json", transfer)
    return EvaluateResult(robustness, transfer, seconds)


def asr_table(robustness: dict) -> list[dict]:
    """Flat rows ``{variant, attack, eps, dodging_asr, impersonation_asr, robust_accuracy}`` for tables/plots."""
    rows = []
    for variant, attacks in robustness.items():
        for attack, report in attacks.items():
            for key, values in report.items():
                if key.startswith("eps_"):
                    rows.append({"variant": variant, "attack": attack, "eps": int(key[4:]), **values})
    return rows


def transfer_array(matrix: dict) -> tuple[list[str], np.ndarray]:
    """Names and the (S, T) array of a transfer matrix (NaN for null)."""
    names = list(matrix)
    values = [[np.nan if matrix[s][t] is None else matrix[s][t] for t in names] for s in names]
    return names, np.asarray(values, dtype=np.float64)
