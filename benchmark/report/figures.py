"""Figures of the label-fraction and g study and of the hyperparameter sweep (make tune)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def label_fraction_figure(table: pd.DataFrame, g: float) -> Figure:
    """Verification accuracy (mean +- fold std) vs label fraction, supervised-only and semi-supervised,
    for the runs at ``g``; plus semi-supervised accuracy vs g where the table has several g values."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_frac, ax_g = fig.subplots(1, 2)
    at_g = table[table["g"] == g].sort_values("label_fraction")
    for stage, label in (("supervised", "supervised only"), ("semisupervised", f"semi-supervised (g={g})")):
        ax_frac.errorbar(at_g["label_fraction"], at_g[stage], yerr=at_g[f"{stage}_std"], marker="o", capsize=3, label=label)
    ax_frac.set_xscale("log")
    ax_frac.set_xlabel("label fraction")
    ax_frac.set_ylabel("10-fold verification accuracy")
    ax_frac.legend()
    ax_frac.grid(True, alpha=0.3)
    by_g = table.groupby("label_fraction")
    for fraction, rows in by_g:
        if rows["g"].nunique() > 1:
            rows = rows.sort_values("g")
            ax_g.errorbar(rows["g"], rows["semisupervised"], yerr=rows["semisupervised_std"], marker="o", capsize=3,
                          label=f"label fraction {fraction}")
    ax_g.set_xlabel("g (weight of LossA)")
    ax_g.set_ylabel("semi-supervised accuracy")
    ax_g.grid(True, alpha=0.3)
    if ax_g.lines:
        ax_g.legend()
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
