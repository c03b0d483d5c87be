"""Figures of the evaluate stage: attack success vs budget per attack and variant; the transfer heatmap."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def asr_vs_eps_figure(rows: list[dict]) -> Figure:
    """One panel per attack: dodging (solid) and impersonation (dashed) success rate vs eps_N, a line per variant.

    rows: :func:`benchmark.evaluation.stage.asr_table` rows.
    """
    attacks = sorted({r["attack"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig = Figure(figsize=(3.2 * len(attacks), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(attacks), sharey=True))
    colors = {v: f"C{i}" for i, v in enumerate(variants)}
    for ax, attack in zip(axes, attacks):
        for variant in variants:
            mine = sorted((r for r in rows if r["attack"] == attack and r["variant"] == variant), key=lambda r: r["eps"])
            eps = [r["eps"] for r in mine]
            for key, style in (("dodging_asr", "-"), ("impersonation_asr", "--")):
                values = [np.nan if r[key] is None else r[key] for r in mine]
                label = variant if key == "dodging_asr" else None
                ax.plot(eps, values, style, marker="o", ms=3, color=colors[variant], label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"])
        ax.set_title(attack)
        ax.set_xlabel("eps_N (N/255 L-inf; L2 mapped)")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("success rate (solid dodging, dashed imp.)")
    axes[-1].legend(fontsize=7, loc="lower right")
    return fig


def transfer_figure(names: list[str], values: np.ndarray, title: str) -> Figure:
    """Heatmap of dodging success: rows = the variant the examples were crafted on, columns = the one attacked."""
    fig = Figure(figsize=(1.1 * len(names) + 2.5, 0.9 * len(names) + 1.8), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("target (attacked)")
    ax.set_ylabel("source (crafted on)")
    for i in range(len(names)):
        for j in range(len(names)):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", color="w" if values[i, j] < 0.6 else "k")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="dodging success rate")
    return fig
