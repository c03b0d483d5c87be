"""The label-fraction study of the semi-supervised variant (patent CN112364828B): pure functions.

The patent's promise is that unlabelled faces improve the recognizer. ``make label-study`` (``facebench
label-study``) trains, per training seed and label fraction, the supervised stage on the labelled images alone and
the semi-supervised stage on the labelled and the unlabelled ones (the same epochs: an epoch is one pass over the
larger set for both), and keeps each test pair's outcome (:func:`benchmark.train.stage.label_study`).
:func:`study_table` turns those runs into ``{init: {fraction: {...}}}``: the two accuracies (mean and standard
deviation over seeds), their difference semi-supervised minus supervised with the paired test over seeds on the same
pairs (:func:`~benchmark.evaluation.paired.paired_difference_over_seeds`) and its verdict. The file it is written to
(``paths.label_study``, committed) records the data and command too, and every run with its pairs' outcomes
(:func:`stored_run`), so a later call adds seeds or fractions to a study (:func:`merged_runs`) instead of redoing
it; the report shows it.
"""

from __future__ import annotations

import base64
import statistics

import numpy as np

from benchmark.evaluation.paired import paired_difference_over_seeds, verdict

VERDICT_WORDS = {"above": "gain shown", "below": "loss shown", "not shown": "not shown"}


def study_table(rows: list[dict]) -> dict:
    """``{init: {fraction (str): {"supervised", "supervised_std", "semisupervised", "semisupervised_std",
    "difference", "ci", "p_value", "verdict", "pairs", "seeds", "labelled_images", "unlabelled_images", "epochs"}}}``
    from :func:`benchmark.train.stage.label_study`'s rows; ``init`` is the semi-supervised stage's, fractions in
    increasing order; a fraction needs both stages at the same seeds. Accuracies are shares of test pairs decided
    correctly at the 10-fold thresholds; ``epochs``: ``{"supervised": [...], "semisupervised": [...]}`` per seed."""
    runs = {(r["fraction"], r["stage"], r["seed"]): r for r in rows}
    init = next((r["init"] for r in rows if r["stage"] == "semisupervised"), "scratch")
    table: dict = {}
    for fraction in sorted({r["fraction"] for r in rows}):
        seeds = sorted(s for (f, stage, s) in runs if f == fraction and stage == "semisupervised"
                       and (f, "supervised", s) in runs)
        if not seeds:
            continue
        picked = {stage: [runs[(fraction, stage, s)] for s in seeds] for stage in ("supervised", "semisupervised")}
        correct = {stage: np.array([r["correct"] for r in picked[stage]], dtype=bool) for stage in picked}
        test = paired_difference_over_seeds(correct["semisupervised"], correct["supervised"])
        entry = {}
        for stage, outcome in correct.items():
            accuracy = outcome.mean(axis=1).tolist()
            entry[stage] = statistics.fmean(accuracy)
            entry[f"{stage}_std"] = statistics.stdev(accuracy) if len(accuracy) > 1 else None
        table[str(fraction)] = {
            **entry, "difference": test["difference"], "ci": test["ci"], "p_value": test["p_value"],
            "verdict": VERDICT_WORDS[verdict(test["ci"])], "pairs": test["pairs"], "seeds": seeds,
            "labelled_images": picked["semisupervised"][0]["labelled"],
            "unlabelled_images": picked["semisupervised"][0]["unlabelled"],
            "epochs": {stage: [r["epochs"] for r in picked[stage]] for stage in picked},
        }
    return {init: table}


def stored_run(run: dict) -> dict:
    """A run of :func:`benchmark.train.stage.label_study` as the study file keeps it: its outcomes (one bool a test
    pair) packed into bits and base64 (``"correct"``), with their count (``"pairs"``); :func:`loaded_run` undoes it."""
    correct = np.asarray(run["correct"], dtype=bool)
    return {**run, "correct": base64.b64encode(np.packbits(correct).tobytes()).decode("ascii"), "pairs": len(correct)}


def loaded_run(stored: dict) -> dict:
    """The run :func:`stored_run` packed, with ``"correct"`` a bool list again."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(stored["correct"]), dtype=np.uint8))[:stored["pairs"]]
    return {k: v for k, v in stored.items() if k != "pairs"} | {"correct": bits.astype(bool).tolist()}


def merged_runs(kept: list[dict], new: list[dict]) -> list[dict]:
    """``kept`` with ``new`` added, a new run replacing a kept one of the same seed, fraction and stage; ordered by
    fraction, seed and stage."""
    runs = {(r["fraction"], r["seed"], r["stage"]): r for r in [*kept, *new]}
    return [runs[k] for k in sorted(runs)]
