"""The ``evaluate`` stage: every trained variant under one protocol.

For each variant in ``evaluate.variants`` it loads ``<artifacts>/models/<variant>.pt``
(:func:`~benchmark.models.checkpoint.load_model`) and its decision threshold (``meta["verification"]
["threshold"]``, saved by the training stages) and runs :func:`evaluate_variant`: clean verification and
identification on the data stage's test pairs, gallery and probes (:mod:`benchmark.evaluation.clean`), and the
robustness report. Then the transfer matrix across all the variants.

Writes, in ``<reports>/metrics/``: ``evaluation.json`` = ``{variant: {"verification": {...},
"identification": {...}, "robustness": {...}}}``; ``robustness.json`` = ``{variant: {attack: {"eps_N": ...,
"median_min_perturbation": ...}}}``; ``transfer.json`` = ``{"attack": "pgd_linf", "eps": N/255 as "eps_N",
"matrix": {source: {target: dodging_asr}}}``. And plot data for ``dvc plots`` in ``<reports>/plots/evaluate/``:
``roc.json`` (every variant's ROC on one FAR grid) and ``asr_vs_eps.json`` (PGD-L-inf dodging and
impersonation success per budget, a column per variant).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark import io
from benchmark.config import Params
from benchmark.evaluation.clean import clean_report, roc_rows
from benchmark.evaluation.robustness_runner import robustness_report, transfer_matrix
from benchmark.models.checkpoint import embed_images, load_model
from benchmark.models.face_model import FaceModel
from benchmark.train.stage import Dataset, load_dataset


PLOT_ATTACK = "pgd_linf"


@dataclass
class EvaluateResult:
    """evaluation: evaluation.json's content; robustness: {variant: {attack: ...}}; transfer: transfer.json's
    content; scores: {variant: (P,) clean test-pair scores}; seconds: {variant: s}."""

    evaluation: dict
    robustness: dict
    transfer: dict
    scores: dict
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


def evaluate_variant(model: FaceModel, threshold: float, data: Dataset, params: Params, name: str = "") -> tuple[dict, np.ndarray]:
    """One variant under the whole protocol: ``({"verification", "identification", "robustness"}, clean pair
    scores (P,))``. The robustness report attacks at the variant's own threshold (see :func:`robustness_report`)."""
    p = data.protocol
    needed = np.unique(np.concatenate([p.pairs.ravel(), p.gallery, p.probes]))
    embeddings = np.zeros((len(data.images), model.embedding_dim), np.float32)
    embeddings[needed] = embed_images(model, data.images[needed])
    report, scores = clean_report(embeddings, data.labels, p)
    report["robustness"] = robustness_report(
        model, data.images, p.pairs, p.is_same, threshold, params.evaluate.robustness, params.seed, desc=name or "robustness"
    )
    return report, scores


def asr_rows(robustness: dict, attack: str = PLOT_ATTACK) -> list[dict]:
    """Rows ``{"eps": N, "<variant>_dodging": asr, "<variant>_impersonation": asr, ...}`` of one attack, for ``dvc plots``."""
    levels = sorted({int(k[4:]) for attacks in robustness.values() for k in attacks.get(attack, {}) if k.startswith("eps_")})
    rows = []
    for n in levels:
        row = {"eps": n}
        for variant, attacks in robustness.items():
            level = attacks.get(attack, {}).get(f"eps_{n}", {})
            row[f"{variant}_dodging"] = level.get("dodging_asr")
            row[f"{variant}_impersonation"] = level.get("impersonation_asr")
        rows.append(row)
    return rows


def run(params: Params, data: Dataset | None = None) -> EvaluateResult:
    """Evaluate every variant, build the transfer matrix, write the metrics and plot files."""
    data = data or load_dataset(params)
    models, thresholds, evaluation, scores, seconds = {}, {}, {}, {}, {}
    for variant in params.evaluate.variants:
        models[variant], thresholds[variant] = load_variant(params, variant)
        start = time.perf_counter()
        evaluation[variant], scores[variant] = evaluate_variant(models[variant], thresholds[variant], data, params, variant)
        seconds[variant] = round(time.perf_counter() - start, 2)
    robustness = {v: r["robustness"] for v, r in evaluation.items()}
    cfg = params.evaluate.robustness
    matrix = transfer_matrix(models, data.images, data.protocol.pairs, data.protocol.is_same, thresholds, cfg, params.seed)
    transfer = {"attack": "pgd_linf", "eps": f"eps_{cfg.transfer_eps}", "steps": cfg.steps, "matrix": matrix}
    reports = Path(params.paths.reports)
    io.write_json(reports / "metrics" / "evaluation.json", evaluation)
    io.write_json(reports / "metrics" / "robustness.json", robustness)
    io.write_json(reports / "metrics" / "transfer.json", transfer)
    io.write_json(reports / "plots" / "evaluate" / "roc.json", roc_rows(scores, data.protocol.is_same))
    io.write_json(reports / "plots" / "evaluate" / "asr_vs_eps.json", asr_rows(robustness))
    return EvaluateResult(evaluation, robustness, transfer, scores, seconds)


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
