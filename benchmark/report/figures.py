"""Figures of the label-fraction and g study."""

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
