"""The ``evaluate`` stage: every trained variant, on every benchmark set, under one protocol.

For each variant in ``evaluate.variants`` it loads ``<artifacts>/models/<variant>.pt``
(:func:`~benchmark.models.checkpoint.load_model`) and its operating threshold, chosen on the training source's
validation pairs by the stage that trained it (``meta["validation"]``, never on test pairs); the variant
``pretrained`` is the converted FaceNet as is (:func:`~benchmark.models.pretrained.pretrained_face_model`), its
thresholds chosen here on the same validation pairs (it needs faces cut as FaceNet's geometry). For each
benchmark set of ``data.benchmarks`` (:func:`~benchmark.data.dataset.load_benchmarks`) runs
:func:`evaluate_variant`: clean verification (10-fold, flip-test fusion when ``evaluate.flip_test``) and, where
the set has a gallery/probe split, identification (:mod:`benchmark.evaluation.clean`), and the robustness report
(attacks on the plain embedding at the validation threshold). Then the transfer matrix across the variants on
the first (headline) benchmark set.

Writes, in ``<reports>/metrics/``: ``evaluation.json`` = ``{variant: {benchmark_set: {"verification": {...},
"identification": {...}, "robustness": {...}}}}``; ``robustness.json`` = ``{variant: {benchmark_set: {attack:
{"eps_N": ..., "median_min_perturbation": ...}}}}``; ``transfer.json`` = ``{"benchmark", "attack": "pgd_linf",
"eps": "eps_N", "matrix": {source: {target: dodging_asr}}}``; ``comparisons.json`` = ``{"reference", "sets": {set:
{variant: {"difference", "ci", "p_value", ...}}}}``: each variant against the reference (``pretrained`` when
evaluated, else the first variant) on the same pairs (:mod:`benchmark.evaluation.paired`); ``findings.json`` = ``[{"source",
"statement", "benchmark", "a", "b", "metric", "kind", "margin", "difference", "ci", "p_value", "pairs", "verdict"}]``:
each claim of :mod:`benchmark.evaluation.claims` decided by a paired test on each set; ``evaluate_run.json`` =
``{"variants": {variant: {"weights", "seconds"}}, "peak_rss_mb"}`` (where each variant's weights came from, and the
stage's peak resident memory). And plot data for ``dvc plots`` in
``<reports>/plots/evaluate/`` (headline set): ``roc.json`` (every variant's ROC on one FAR grid) and
``asr_vs_eps.json`` (PGD-L-inf dodging and impersonation success per budget, a column per variant).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark import io
from benchmark.config import Params
from benchmark.device import resolve
from benchmark.data.dataset import BenchmarkSet, load_benchmarks
from benchmark.evaluation.claims import CLAIMS, decide, fine_tuning_claims
from benchmark.evaluation.clean import clean_report, roc_rows
from benchmark.evaluation.paired import paired_difference
from benchmark.evaluation.robustness_runner import HEADLINE_ATTACK, attacks_of, robustness_report, transfer_matrix
from benchmark.evaluation.verification import kfold_correct
from benchmark.models.checkpoint import embed_images, load_model
from benchmark.models.face_model import FaceModel
from benchmark.train.recipe import PRETRAINED_VARIANT, check_crops, pretrained_variant


@dataclass
class EvaluateResult:
    """evaluation: evaluation.json's content; robustness: {variant: {set: {attack: ...}}}; transfer: transfer.json's
    content; scores: {set: {variant: (P,) clean pair scores}}; seconds: {variant: s}; benchmarks: the sets;
    comparisons: comparisons.json's content; run: evaluate_run.json's content; findings: findings.json's content."""

    evaluation: dict
    robustness: dict
    transfer: dict
    scores: dict
    seconds: dict
    benchmarks: dict[str, BenchmarkSet]
    comparisons: dict
    run: dict
    findings: list[dict]


def load_variant(params: Params, variant: str) -> tuple[FaceModel, float]:
    """The variant's model (on ``params.device``, eval mode) and its operating threshold: the accuracy-maximizing
    cosine threshold of its plain embedding on the validation pairs (``meta["validation"]["plain"]``)."""
    path = Path(params.paths.artifacts) / "models" / f"{variant}.pt"
    device = resolve(params.device)
    model = pretrained_variant(params, device) if variant == PRETRAINED_VARIANT else load_model(path).to(device)
    try:
        threshold = float(model.meta["validation"]["plain"]["threshold"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"checkpoint '{path}' has no meta['validation'] thresholds (saved by the training stages "
                         "from validation pairs); retrain it") from err
    return model, threshold


def evaluate_variant(model: FaceModel, threshold: float, bench: BenchmarkSet, params: Params,
                     name: str = "") -> tuple[dict, np.ndarray, np.ndarray]:
    """One variant on one benchmark set under the whole protocol: ``({"verification", "identification"?,
    "robustness"}, clean pair scores (P,), robust outcome of each attacked pair)``. The robustness report attacks
    at the variant's validation threshold (see :func:`robustness_report`); the robust outcomes are PGD's in the
    headline check, on the same pairs for every variant."""
    check_crops(model, bench.geometry, f"benchmark set '{bench.name}'")
    needed = np.unique(np.concatenate([bench.pairs.ravel(), bench.gallery, bench.probes]))
    embeddings = np.zeros((len(bench.images), model.embedding_dim), np.float32)
    embeddings[needed] = embed_images(model, bench.images[needed], flip=params.evaluate.flip_test)
    report, scores = clean_report(embeddings, bench.labels, bench.pairs, bench.is_same, bench.folds,
                                  bench.gallery, bench.probes)
    robust = robustness_report(
        model, bench.images, bench.pairs, bench.is_same, threshold, params.evaluate.robustness, params.seed,
        desc=f"{name} on {bench.name}" if name else "robustness",
    )
    report["robustness"] = robust.report
    return report, scores, robust.pgd_correct


def weights_origin(model: FaceModel) -> str:
    """Where a loaded variant's weights came from: ``scratch``, ``fine-tuned from facenet_casia`` or
    ``facenet_casia as is`` (the ``pretrained`` variant), from its checkpoint's ``meta``."""
    meta = getattr(model, "meta", {})
    if "init" in meta:
        return f"{meta['init']} as is"
    init = meta.get("config", {}).get("init", "scratch")
    return init if init == "scratch" else f"fine-tuned from {init}"


def clean_outcomes(scores: dict, benchmarks: dict[str, BenchmarkSet]) -> dict:
    """``{set: {variant: bool (P,)}}``: each pair decided at its fold's 10-fold threshold (:func:`kfold_correct`)."""
    return {name: {v: kfold_correct(s, bench.is_same, bench.folds) for v, s in scores[name].items()}
            for name, bench in benchmarks.items()}


def comparisons(clean: dict, reference: str, seed: int) -> dict:
    """``{"reference", "sets": {set: {variant: paired_difference(variant, reference)}}}`` on each set's pairs
    (``clean``: :func:`clean_outcomes`)."""
    return {"reference": reference,
            "sets": {name: {v: paired_difference(c, correct[reference], seed=seed) for v, c in correct.items()
                            if v != reference} for name, correct in clean.items()}}


def findings(clean: dict, robust: dict, evaluation: dict, weights: dict, seed: int) -> list[dict]:
    """Every claim of :data:`~benchmark.evaluation.claims.CLAIMS` whose variants were evaluated, and each variant
    fine-tuned from the ``pretrained`` reference against it, decided on every benchmark set by a paired test
    (:func:`~benchmark.evaluation.claims.decide`); ``robust``: ``{set: {variant: bool (P,)}}`` (the headline
    attack's outcomes)."""
    fine_tuned = [v for v, w in weights.items() if w.startswith("fine-tuned")]
    claims = CLAIMS + (fine_tuning_claims(PRETRAINED_VARIANT, fine_tuned) if PRETRAINED_VARIANT in weights else ())
    out = []
    for name in clean:
        fold_std = {v: per[name]["verification"]["accuracy_std"] for v, per in evaluation.items()}
        outcomes = {"clean": clean[name], "robust": robust[name]}
        out += decide(claims, outcomes, fold_std, name, seed)
    return out


def asr_rows(robustness: dict, attack: str = HEADLINE_ATTACK) -> list[dict]:
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


def run(params: Params, benchmarks: dict[str, BenchmarkSet] | None = None) -> EvaluateResult:
    """Evaluate every variant on every benchmark set, build the transfer matrix, write the metrics and plots."""
    benchmarks = benchmarks or load_benchmarks(params)
    models, thresholds, seconds, weights = {}, {}, {}, {}
    evaluation: dict = {}
    scores: dict = {name: {} for name in benchmarks}
    robust: dict = {name: {} for name in benchmarks}
    for variant in params.evaluate.variants:
        models[variant], thresholds[variant] = load_variant(params, variant)
        weights[variant] = weights_origin(models[variant])
        start = time.perf_counter()
        evaluation[variant] = {}
        for name, bench in benchmarks.items():
            evaluation[variant][name], scores[name][variant], robust[name][variant] = evaluate_variant(
                models[variant], thresholds[variant], bench, params, variant)
        seconds[variant] = round(time.perf_counter() - start, 2)
    robustness = {v: {name: r["robustness"] for name, r in per_set.items()} for v, per_set in evaluation.items()}
    cfg = params.evaluate.robustness
    head_name, head = next(iter(benchmarks.items()))
    matrix = transfer_matrix(models, head.images, head.pairs, head.is_same, thresholds, cfg, params.seed)
    transfer = {"benchmark": head_name, "attack": "pgd_linf", "eps": f"eps_{cfg.transfer_eps}", "steps": cfg.steps,
                "matrix": matrix}
    reports = Path(params.paths.reports)
    io.write_json(reports / "metrics" / "evaluation.json", evaluation)
    io.write_json(reports / "metrics" / "robustness.json", robustness)
    io.write_json(reports / "metrics" / "transfer.json", transfer)
    reference = PRETRAINED_VARIANT if PRETRAINED_VARIANT in models else next(iter(models))
    clean = clean_outcomes(scores, benchmarks)
    paired = comparisons(clean, reference, params.seed)
    io.write_json(reports / "metrics" / "comparisons.json", paired)
    decided = findings(clean, robust, evaluation, weights, params.seed)
    io.write_json(reports / "metrics" / "findings.json", decided)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    run_info = {"variants": {v: {"weights": weights[v], "seconds": seconds[v]} for v in seconds},
                "peak_rss_mb": round(peak_mb, 1)}
    io.write_json(reports / "metrics" / "evaluate_run.json", run_info)
    io.write_json(reports / "plots" / "evaluate" / "roc.json", roc_rows(scores[head_name], head.is_same))
    io.write_json(reports / "plots" / "evaluate" / "asr_vs_eps.json",
                  asr_rows({v: per_set[head_name] for v, per_set in robustness.items()}))
    return EvaluateResult(evaluation, robustness, transfer, scores, seconds, benchmarks, paired, run_info, decided)


def asr_table(robustness: dict) -> list[dict]:
    """Flat rows ``{variant, benchmark, attack, eps, dodging_asr, impersonation_asr, robust_accuracy}`` of
    robustness.json's ``{variant: {set: {attack: ...}}}``, for tables and plots."""
    rows = []
    for variant, per_set in robustness.items():
        for bench, attacks in per_set.items():
            for attack, report in attacks_of(attacks).items():
                for key, values in report.items():
                    if key.startswith("eps_"):
                        rows.append({"variant": variant, "benchmark": bench, "attack": attack, "eps": int(key[4:]),
                                     **values})
    return rows


def transfer_array(matrix: dict) -> tuple[list[str], np.ndarray]:
    """Names and the (S, T) array of a transfer matrix (NaN for null)."""
    names = list(matrix)
    values = [[np.nan if matrix[s][t] is None else matrix[s][t] for t in names] for s in names]
    return names, np.asarray(values, dtype=np.float64)
