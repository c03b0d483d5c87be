"""The gated hardening against its competitors on the plane of training cost and worst-case robustness: pure functions.

Patent CN116665282A's gate should keep the robustness of static adversarial training at a lower training cost. One
point is one adversarial training run:

* its cost: ``passes``, the images forwarded with autograd on during its training steps (each followed by a backward
  pass; :mod:`benchmark.train.adversarial`), the machine-independent measure, and ``seconds``, the wall time of those
  steps on the machine that ran them;
* its worst-case robust accuracy at 4/255 on validation pairs (PGD-10, then APGD and Square on what PGD left:
  :func:`~benchmark.evaluation.robustness_runner.worst_case_robust_accuracy`) with its Wilson 95% interval, and its
  clean accuracy on the validation pairs.

``make gate-sweep`` (``facebench gate-sweep``) trains the gated stage at several thresholds, ``natural_then_at`` at
several switch points, and PGD-AT and TRADES once, every other setting at params.yaml's, and writes their points
(:func:`stage_row`), the command, the data it ran on and the choice of each knob (:func:`choose`) to the sweep file
(``paths.gate_sweep``). The report stage adds this run's own adversarial stages where they were scored on the
validation worst case (:func:`gate_pareto`; the DAG's stages leave that to the sweep, whose point at each stage's
setting stands for it once :func:`differs_from_run` finds it is the same model), marks the points no other point dominates (:func:`dominated_by`) and places the run's variants on the test
pairs with intervals.
Test pairs only measure: every choice here is made on validation pairs.
"""

from __future__ import annotations

from benchmark.evaluation.robustness_runner import worst_case
from benchmark.report.tuning import mean_score

ADVERSARIAL_VARIANTS = ("adversarial", "pgd_at", "trades", "natural_then_at")
KNOBS = {"adversarial": "threshold", "natural_then_at": "switch"}  # the knob the sweep turns per variant
RULE = ("score = mean of clean and worst-case robust accuracy on validation pairs; chosen = the fewest passes among "
        "the settings whose score is within the 95% half-width of the best score (normal approximation)")


def stage_row(variant: str, metrics: dict, seed: int, source: str) -> dict:
    """One point from an adversarial stage's metrics (``reports/metrics/<stage>.json``): ``{"variant", "threshold",
    "switch", "seed", "passes", "seconds", "worst_case_robust_accuracy", "worst_case_ci", "n", "clean_accuracy",
    "clean_pairs", "source", "pairs": "validation"}``; ``threshold``/``switch`` are None where the variant has none."""
    validation = metrics["validation"]
    worst = validation["worst_case_robust_accuracy"]
    return {
        "variant": variant, "threshold": metrics.get("threshold"), "switch": metrics.get("switch"), "seed": seed,
        "passes": metrics["passes"], "seconds": metrics["train_seconds"],
        "worst_case_robust_accuracy": worst["value"], "worst_case_ci": worst["ci"], "n": worst["n"],
        "clean_accuracy": validation["accuracy"], "clean_pairs": validation["pairs"], "source": source,
        "pairs": "validation",
    }


def point_name(row: dict) -> str:
    """``variant`` plus its threshold or switch where it has one, e.g. ``adversarial 6``."""
    knob = row["threshold"] if row["threshold"] is not None else row["switch"]
    return row["variant"] if knob is None else f"{row['variant']} {knob:g}"


def dominated_by(rows: list[dict], cost: str = "passes") -> list[list[str]]:
    """Per row, the names (:func:`point_name`) of the other rows that cost no more (``cost``) and keep no less
    worst-case robust accuracy, one of the two strictly better; a row with none is on the cost-robustness front."""
    key = "worst_case_robust_accuracy"
    return [[point_name(o) for o in rows
             if o[cost] <= r[cost] and o[key] >= r[key] and (o[cost] < r[cost] or o[key] > r[key])] for r in rows]


def choose(rows: list[dict], variant: str) -> dict | None:
    """The choice of ``variant``'s knob (:data:`KNOBS`) among its ``rows`` by :data:`RULE`: ``{"variant", "knob",
    "chosen", "best", "best_score", "halfwidth", "settings", "rule"}``; None when the variant has no row."""
    knob = KNOBS[variant]
    group = [r for r in rows if r["variant"] == variant]
    if not group:
        return None
    scored = [(r, *mean_score([(r["clean_accuracy"], r["clean_pairs"]), (r["worst_case_robust_accuracy"], r["n"])]))
              for r in group]
    best, best_score, halfwidth = max(scored, key=lambda t: t[1])
    chosen = min((r for r, score, _ in scored if score >= best_score - halfwidth), key=lambda r: r["passes"])
    return {"variant": variant, "knob": knob, "chosen": chosen[knob], "best": best[knob], "best_score": best_score,
            "halfwidth": halfwidth, "settings": sorted(r[knob] for r in group), "rule": RULE}


def on_test_pairs(variant: str, evaluation: dict, metrics: dict, benchmark: str) -> dict:
    """This run's ``variant`` on the test pairs of ``benchmark``: its cost, the evaluate stage's worst case at 4/255
    with its interval (None where it was not attacked) and its clean 10-fold accuracy, ``pairs: "test"``."""
    verification = evaluation.get(variant, {}).get(benchmark, {}).get("verification") or {}
    worst = worst_case(evaluation, variant, benchmark) or {}
    return {
        "variant": variant, "threshold": metrics.get("threshold"), "switch": metrics.get("switch"),
        "passes": metrics["passes"], "seconds": metrics["train_seconds"],
        "worst_case_robust_accuracy": worst.get("value"), "worst_case_ci": worst.get("ci"), "n": worst.get("n"),
        "clean_accuracy": verification.get("accuracy_mean"), "clean_std": verification.get("accuracy_std"),
        "pairs": "test",
    }


def gate_pareto(sweep: dict | None, stages: dict[str, dict], evaluation: dict, benchmark: str, data_hashes: dict,
                seed: int) -> dict:
    """``reports/metrics/gate_pareto.json``: ``{"rows", "test", "benchmark", "sweep"}``, all rows on validation pairs.

    ``rows``: the sweep's points (``source: "sweep"``) when ``sweep`` ran on the same data (``data_hashes``: the
    manifest's faces and protocol hashes), each with ``run_setting`` (it stands for a stage of this run that was not
    scored on the validation worst case, as the DAG's are not: :func:`benchmark.train.stage.run`), then this run's
    stages that were (``source: "run"``); each with ``dominated_by`` and ``on_front`` by passes (``..._seconds`` by
    seconds). ``test``: this run's adversarial stages on ``benchmark``'s test pairs (:func:`on_test_pairs`).
    ``sweep``: ``{"command", "choice", "used", "reason", "differs"}``: why it was left out, and where a point standing
    for a stage is not that stage's model (:func:`differs_from_run`)."""
    used = sweep is not None and sweep.get("data_hashes") == data_hashes
    run = [v for v in ADVERSARIAL_VARIANTS if "passes" in stages.get(v, {})]
    rows = [dict(r) for r in sweep["rows"]] if used else []
    unscored = [v for v in run if "worst_case_robust_accuracy" not in stages[v]["validation"]]
    for row in rows:  # the sweep's point standing for a stage this run did not score on the validation worst case
        row["run_setting"] = row["variant"] in unscored and at_setting(row, stages[row["variant"]])
    differs = [d for r in rows if r["run_setting"] and (d := differs_from_run(r, stages[r["variant"]]))]
    rows += [stage_row(v, stages[v], seed, "run") for v in run if v not in unscored]
    for cost, suffix in (("passes", ""), ("seconds", "_seconds")):
        for row, better in zip(rows, dominated_by(rows, cost)):
            row[f"dominated_by{suffix}"], row[f"on_front{suffix}"] = better, not better
    reason = None if used else ("no sweep file: run `make gate-sweep`" if sweep is None else
                                "the sweep ran on other data (faces or protocol hashes differ): run `make gate-sweep`")
    return {"rows": rows, "test": [on_test_pairs(v, evaluation, stages[v], benchmark) for v in run],
            "benchmark": benchmark,
            "sweep": {"command": (sweep or {}).get("command"), "choice": (sweep or {}).get("choice"), "used": used,
                      "reason": reason, "differs": differs}}


def at_setting(row: dict, metrics: dict) -> bool:
    """Whether the sweep's ``row`` is at the threshold or switch of the stage whose ``metrics`` these are."""
    knob = KNOBS.get(row["variant"])
    return knob is None or row[knob] == metrics.get(knob)


def differs_from_run(row: dict, metrics: dict) -> str | None:
    """None when the sweep's ``row`` at a stage's setting trained the same model as the stage (the same passes and clean
    validation accuracy: same code, settings, data and seed), else a phrase naming both."""
    ran = (metrics["passes"], metrics["validation"]["accuracy"])
    if (row["passes"], row["clean_accuracy"]) == ran:
        return None
    return (f"{point_name(row)}: the sweep's {row['passes']} passes and clean {row['clean_accuracy']:.4f}, this run's "
            f"{ran[0]} and {ran[1]:.4f}")
