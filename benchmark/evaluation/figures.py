"""Figures of the evaluate stage: every variant's ROC and attack success vs budget per attack and variant, both per
benchmark set, and the transfer heatmap (headline set)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from benchmark.evaluation.robustness_runner import attacks_of


def _variant_colors(variants) -> dict[str, str]:
    return {v: f"C{i}" for i, v in enumerate(dict.fromkeys(variants))}


def asr_vs_eps_figure(robustness: dict) -> Figure:
    """A row of panels per benchmark set, one panel per attack: dodging (solid) and impersonation (dashed) success
    rate vs eps_N, a line per variant (one colour per variant throughout).

    robustness: ``robustness.json``'s content, ``{variant: {benchmark_set: {attack: {"eps_N": {"dodging_asr",
    "impersonation_asr", ...}, ...}}}}``; sets in order of first appearance, a null rate drawn as a gap.
    """
    sets = list(dict.fromkeys(b for per_set in robustness.values() for b in per_set))
    attacks = sorted({a for per_set in robustness.values() for report in per_set.values() for a in attacks_of(report)})
    colors = _variant_colors(robustness)
    fig = Figure(figsize=(3.2 * len(attacks), 3.0 * len(sets) + 0.4), layout="constrained")
    axes = np.asarray(fig.subplots(len(sets), len(attacks), sharey=True, squeeze=False))
    for row, benchmark in zip(axes, sets):
        for ax, attack in zip(row, attacks):
            for variant, per_set in robustness.items():
                report = per_set.get(benchmark, {}).get(attack, {})
                eps = sorted(int(k[4:]) for k in report if k.startswith("eps_"))
                for key, style in (("dodging_asr", "-"), ("impersonation_asr", "--")):
                    values = [np.nan if (v := report[f"eps_{n}"].get(key)) is None else v for n in eps]
                    label = variant if key == "dodging_asr" else None
                    ax.plot(eps, values, style, marker="o", ms=3, color=colors[variant], label=label)
            ax.set_xscale("log", base=2)
            ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"])
            ax.set_title(f"{benchmark}: {attack}", fontsize=9)
            ax.set_ylim(-0.02, 1.02)
        row[0].set_ylabel("success rate (solid dodging, dashed imp.)")
    for ax in axes[-1]:
        ax.set_xlabel("eps_N (N/255 L-inf; L2 mapped)")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    return fig


def transfer_figure(names: list[str], values: np.ndarray, title: str) -> Figure:
    """Heatmap of dodging success: rows = the variant the examples were crafted on, columns = the one attacked.
    ``transfer.json`` is measured on the headline set (its ``"benchmark"``): say so in ``title``."""
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


def roc_figure(rows_by_set: dict[str, list[dict]]) -> Figure:
    """One panel per benchmark set: every variant's ROC (log FAR), one colour per variant throughout.

    rows_by_set: ``{benchmark_set: rows}`` in params.yaml order, each rows list from
    :func:`benchmark.evaluation.clean.roc_rows` (``[{"far": f, "<variant>": tar, ...}]``).
    """
    fig = Figure(figsize=(5.0 * len(rows_by_set), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(rows_by_set), sharey=True))
    colors = _variant_colors(k for rows in rows_by_set.values() for k in rows[0] if k != "far")
    for ax, (benchmark, rows) in zip(axes, rows_by_set.items()):
        far = [r["far"] for r in rows]
        for variant in [k for k in rows[0] if k != "far"]:
            ax.step(far, [r[variant] for r in rows], where="post", color=colors[variant], label=variant)
        ax.set_xscale("log")
        ax.set_xlabel("false accept rate")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"Clean verification on {benchmark}")
    axes[0].set_ylabel("true accept rate")
    axes[0].legend(fontsize=8)
    return fig
