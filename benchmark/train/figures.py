"""Figures of the training stages: loss curves with convergence marks, and the collapse check."""

from __future__ import annotations

from matplotlib.figure import Figure


def loss_curves(history: dict, names: tuple[str, ...] = ("loss_a", "loss_b", "loss1", "loss2", "loss3")) -> Figure:
    """Train and validation curves of each loss the history has; a dashed line where it converged."""
    shown = [n for n in names if n in history["curves"]]
    fig = Figure(figsize=(4.2 * len(shown), 3.4), layout="constrained")
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    for ax, name in zip(axes, shown):
        curve = history["curves"][name]
        epochs = range(1, len(curve["train"]) + 1)
        ax.plot(epochs, curve["train"], label="train")
        ax.plot(epochs, curve["val"], label="validation")
        converged = history["converged_at"].get(name)
        if converged:
            ax.axvline(converged, color="k", linestyle="--", linewidth=1, label=f"converged (epoch {converged})")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Training stopped: {history['stopped']} after {history['epochs']} epochs")
    return fig


def collapse_figure(collapse: dict[str, list[float]]) -> Figure:
    """Per-epoch spread of each feature map (0 = collapsed: every image gives the same map)."""
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    for name, values in collapse.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("feature spread / mean |activation|")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)
    fig.suptitle("No collapse: down1-3 and up1-3 stay spread across images")
    return fig
