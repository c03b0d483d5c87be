"""The hyperparameter sweep (``make tune``): every default that params.yaml or the README defends, chosen on the
validation identities of the training source, never on test pairs (DESIGN.md, convention 14).

``make tune`` runs one DVC experiment per setting, one knob at a time around the defaults, each reproducing only
its stage. :func:`tuning_table` reads them back (the runs of :func:`benchmark.report.experiments.runs`) and scores
each on its stage's validation metrics: the verification accuracy of the validation pairs at the threshold
chosen on them, and, for the adversarial stages, PGD-10's robust accuracy on those pairs at the training budget.
:func:`choices` compares per knob the setting with the highest score (the validation accuracy, or for an adversarial
stage the mean of clean and robust validation accuracy: a hardened model is worth what it keeps on both) with the
default, and moves the default only when that best score exceeds the default's by more than the half-width of the
default score's 95% interval (normal approximation over the validation pairs): a smaller gain is within what
rerunning the default with another seed or other pairs could give, and chasing it would tune on noise.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy.stats import norm

from benchmark.evaluation.intervals import CONFIDENCE, wilson

Z = norm.ppf(0.5 + CONFIDENCE / 2)  # the normal quantile of the intervals' confidence, 1.96 at 95%

# The knobs the sweep turns: {stage: (knob, ...)}; a knob's setting may move companions (KNOB_COMPANIONS) with it.
# The gate's threshold is make gate-sweep's (benchmark/report/pareto.py): it is chosen on worst-case robustness and cost.
KNOBS = {
    "adversarial": ("beta", "gamma", "max_epochs"),
    "semisupervised": ("g",),
    "timm_reference": ("backbone",),
}
KNOB_COMPANIONS = {"max_epochs": ("patience",)}  # the adversarial stages run every epoch: patience = max_epochs
COLUMNS = ["stage", "knob", "value", "default", "val_accuracy", "val_robust_accuracy", "val_robust_ci", "score",
           "score_halfwidth", "name"]


def tuning_table(found: list[dict], defaults: dict) -> pd.DataFrame:
    """One row per (stage, knob, value) among ``found`` runs (``{"name", "params", "metrics"}``) whose params equal
    ``defaults`` (params.yaml as a dict) but for that one knob (and its companions), the defaults' own run in every
    knob's rows. Columns :data:`COLUMNS`; ``val_robust_*`` are None for stages that are not attacked; the first
    (newest) run of a setting is kept."""
    rows: dict = {}
    for run in found:
        for stage, knobs in KNOBS.items():
            for knob in knobs:
                if not _only_differs_in(run["params"], defaults, stage, knob):
                    continue
                metrics = next((m for path, m in run["metrics"].items() if path.endswith(f"metrics/{stage}.json")), None)
                validation = (metrics or {}).get("validation")
                if validation is None or (stage == "adversarial" and "robust_accuracy" not in validation):
                    continue  # not run, or run before the adversarial stages scored robustness on validation pairs
                robust = validation.get("robust_accuracy")
                rates = [(validation["accuracy"], validation["pairs"])] + ([] if robust is None else [(robust["value"], robust["n"])])
                score, halfwidth = mean_score(rates)
                value = run["params"][stage][knob]
                rows.setdefault((stage, knob, _order(value)), {
                    "stage": stage, "knob": knob, "value": value, "default": value == defaults[stage][knob],
                    "val_accuracy": validation["accuracy"],
                    "val_robust_accuracy": None if robust is None else robust["value"],
                    "val_robust_ci": None if robust is None else _wilson(robust),
                    "score": score, "score_halfwidth": halfwidth, "name": run["name"],
                })
    return pd.DataFrame([rows[key] for key in sorted(rows)], columns=COLUMNS)


def mean_score(rates: list[tuple[float, int]]) -> tuple[float, float]:
    """The mean of rates ``[(value, n), ...]`` measured on independent pairs, and the half-width of its 95% interval
    (normal approximation): ``(score, halfwidth)``."""
    score = sum(p for p, _ in rates) / len(rates)
    return score, Z * math.sqrt(sum(p * (1 - p) / n for p, n in rates)) / len(rates)


def choices(table: pd.DataFrame) -> pd.DataFrame:
    """Per (stage, knob) of :func:`tuning_table`: the number of settings tried, the default and its score, the best
    setting (the first in the table's order on a tie) and its score, and the choice: the best setting if its score
    beats the default's by more than the default's ``score_halfwidth`` (``moved`` True), else the default. Knobs
    whose default did not run are left out."""
    rows = []
    for (stage, knob), group in table.groupby(["stage", "knob"], sort=False):
        default = group[group["default"]]
        if default.empty:
            continue
        best, default = group.loc[group["score"].idxmax()], default.iloc[0]
        moved = best["score"] - default["score"] > default["score_halfwidth"]
        rows.append({
            "stage": stage, "knob": knob, "settings": len(group), "default": default["value"],
            "default_score": default["score"], "halfwidth": default["score_halfwidth"], "best": best["value"],
            "best_score": best["score"], "moved": bool(moved), "chosen": best["value"] if moved else default["value"],
        })
    return pd.DataFrame(rows)


def _wilson(rate: dict) -> tuple[float, float]:
    """The Wilson 95% interval of a ``{"value", "n"}`` rate (DVC drops the lists of metrics files, its ``ci`` too)."""
    return tuple(wilson(round(rate["value"] * rate["n"]), rate["n"]))


def _order(value: object) -> tuple:
    """A sort key that orders numbers numerically and before strings."""
    return (0, float(value), "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0.0, str(value))


def _only_differs_in(params: dict, defaults: dict, stage: str, knob: str) -> bool:
    """Whether ``params`` equals ``defaults`` except ``stage.knob`` (and its companions) and the sections no training
    stage reads (``evaluate``, ``identify``: a sweep of the defaults' own run may differ there)."""
    free = {knob, *KNOB_COMPANIONS.get(knob, ())}
    for section in set(params) | set(defaults):
        if section in ("evaluate", "identify"):
            continue
        mine, theirs = params.get(section), defaults.get(section)
        if section == stage and isinstance(mine, dict) and isinstance(theirs, dict):
            mine = {k: v for k, v in mine.items() if k not in free}
            theirs = {k: v for k, v in theirs.items() if k not in free}
        if mine != theirs:
            return False
    return True
