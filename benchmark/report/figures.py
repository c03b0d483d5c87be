"""Figures of the label-fraction study (make label-study), of the hyperparameter sweep (make tune) and of the gate's
cost front (make gate-sweep)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def label_study_figure(study: dict) -> Figure:
    """One panel per init of the label study (``{init: {"fractions": {fraction: row}}}``, the study file): supervised-only
    and semi-supervised test-pair accuracy (mean and standard deviation over seeds) against the label fraction, and
    below, their difference with its 95% paired interval."""
    inits = list(study)
    fig = Figure(figsize=(4.8 * max(len(inits), 1), 6), layout="constrained")
    axes = fig.subplots(2, max(len(inits), 1), squeeze=False, sharex="col")
    for col, init in enumerate(inits):
        rows = sorted(study[init]["fractions"].items(), key=lambda kv: float(kv[0]))
        x = [float(f) for f, _ in rows]
        for stage, label in (("supervised", "supervised only"), ("semisupervised", "semi-supervised")):
            axes[0][col].errorbar(x, [r[stage] for _, r in rows], yerr=[r[f"{stage}_std"] or 0 for _, r in rows],
                                  marker="o", capsize=3, label=label)
        axes[0][col].set_title(f"init: {init}", fontsize=9)
        axes[0][col].set_ylabel("test-pair accuracy")
        axes[0][col].legend(fontsize=7)
        diff = [r["difference"] for _, r in rows]
        err = [[d - r["ci"][0] for d, (_, r) in zip(diff, rows)], [r["ci"][1] - d for d, (_, r) in zip(diff, rows)]]
        axes[1][col].errorbar(x, diff, yerr=err, marker="s", capsize=3, color="C2")
        axes[1][col].axhline(0, color="grey", linewidth=1)
        axes[1][col].set_xscale("log")
        axes[1][col].set_xlabel("label fraction")
        axes[1][col].set_ylabel("semi − supervised [95% CI]")
        for ax in axes[:, col]:
            ax.grid(True, alpha=0.3)
    return fig


def tuning_figure(table: pd.DataFrame) -> Figure:
    """One panel per swept knob of :func:`benchmark.report.tuning.tuning_table`: validation accuracy, and for the
    adversarial stage PGD-10's robust validation accuracy with its Wilson 95% interval and their mean (the score),
    against the knob's settings; the default is marked."""
    groups = list(table.groupby(["stage", "knob"], sort=False))
    fig = Figure(figsize=(3.2 * max(len(groups), 1), 3.2), layout="constrained")
    for ax, ((stage, knob), rows) in zip(fig.subplots(1, max(len(groups), 1), squeeze=False)[0], groups):
        x = list(range(len(rows)))
        ax.plot(x, rows["val_accuracy"], marker="o", label="clean")
        if rows["val_robust_accuracy"].notna().all():
            lo, hi = zip(*rows["val_robust_ci"])
            robust = rows["val_robust_accuracy"].to_numpy(dtype=float)
            ax.errorbar(x, robust, yerr=[robust - lo, [h - r for h, r in zip(hi, robust)]], marker="s", capsize=3,
                        label="robust (PGD-10)")
            ax.plot(x, rows["score"], linestyle="--", marker=".", label="mean (score)")
        ax.set_xticks(x, [f"{v}*" if d else str(v) for v, d in zip(rows["value"], rows["default"])], fontsize=7)
        ax.set_title(f"{stage}.{knob}", fontsize=9)
        ax.set_ylabel("validation accuracy")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig


VARIANT_MARKERS = {"adversarial": "o", "natural_then_at": "s", "pgd_at": "^", "trades": "v"}


def gate_pareto_figure(pareto: dict) -> Figure:
    """Worst-case robust accuracy on validation pairs (Wilson 95% interval) against training cost, by forward+backward
    passes (left) and by training seconds (right), for every point of
    :func:`benchmark.report.pareto.gate_pareto`: filled markers from the sweep, outlined ones this run's stages, each
    labelled with its threshold or switch; the front by passes (left) and by seconds (right) as a step line."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    rows = pareto["rows"]
    for ax, cost, front_key in zip(fig.subplots(1, 2), ("passes", "seconds"), ("on_front", "on_front_seconds")):
        for i, variant in enumerate(VARIANT_MARKERS):
            for source, filled in (("sweep", True), ("run", False)):
                pts = [r for r in rows if r["variant"] == variant and r["source"] == source]
                if not pts:
                    continue
                y = [r["worst_case_robust_accuracy"] for r in pts]
                err = [[v - r["worst_case_ci"][0] for v, r in zip(y, pts)], [r["worst_case_ci"][1] - v for v, r in zip(y, pts)]]
                ax.errorbar([r[cost] for r in pts], y, yerr=err, fmt=VARIANT_MARKERS[variant], color=f"C{i}", capsize=2,
                            mfc=f"C{i}" if filled else "white", label=f"{variant} ({source})")
                for r in pts:
                    knob = r["threshold"] if variant == "adversarial" else r["switch"]
                    if knob is not None:
                        ax.annotate(f"{knob:g}", (r[cost], r["worst_case_robust_accuracy"]), fontsize=7,
                                    textcoords="offset points", xytext=(4, 4))
        front = sorted((r[cost], r["worst_case_robust_accuracy"]) for r in rows if r[front_key])
        if front:
            ax.step(*zip(*front), where="post", color="grey", linestyle="--", linewidth=1, label="front")
        ax.set_xlabel("forward+backward passes in training" if cost == "passes" else "training seconds (this machine)")
        ax.set_ylabel("worst-case robust accuracy, validation (4/255)")
        ax.grid(True, alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    return fig
