"""Figures of the training stages: loss curves with convergence marks, the collapse check, and the gate."""

from __future__ import annotations

from matplotlib.figure import Figure


def loss_curves(
    history: dict, names: tuple[str, ...] = ("loss_a", "loss_b", "loss1", "loss2", "loss3", "loss_adv", "term")
) -> Figure:
    """Train and validation curves of each loss the history has (a curve may have only one of them), a dotted
    line for a skip loss's mean-map floor (``<name>_mean_map``) and a dashed one where it converged."""
    shown = [n for n in names if n in history["curves"]]
    fig = Figure(figsize=(4.2 * len(shown), 3.4), layout="constrained")
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    for ax, name in zip(axes, shown):
        curve = history["curves"][name]
        for split, label in (("train", "train"), ("val", "validation")):
            if curve[split]:
                ax.plot(range(1, len(curve[split]) + 1), curve[split], label=label)
        floor = history["curves"].get(f"{name}_mean_map", {}).get("val")
        if floor:  # a decoder that predicts the mean map, whatever its input
            ax.plot(range(1, len(floor) + 1), floor, "k:", label="predict the mean map (validation)")
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


def gate_figure(gate: dict, epochs: int) -> Figure:
    """The performance gate over training (patent CN116665282A): the source batch's loss per step with the
    precision threshold, and the on/off state (term on, adversarial batches) underneath; thin grey lines
    separate the ``epochs`` epochs. ``gate`` is a :meth:`~benchmark.train.gate.PerformanceGate.log`."""
    loss, on = gate["loss"], gate["on"]
    steps = range(1, len(loss) + 1)
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax_loss, ax_on = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    ax_loss.plot(steps, loss, linewidth=0.8, label="source batch loss")
    ax_loss.axhline(gate["threshold"], color="r", linestyle="--", linewidth=1, label=f"threshold {gate['threshold']:g}")
    if gate["hysteresis"]:
        ax_loss.axhline(gate["threshold"] + gate["hysteresis"], color="r", linestyle=":", linewidth=1, label="switch-off level")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("cross-entropy (nats)")
    ax_loss.legend(fontsize=7)
    ax_loss.grid(True, alpha=0.3)
    ax_on.fill_between(steps, on, step="post", alpha=0.6)
    ax_on.set_yticks([0, 1], ["off", "on"])
    ax_on.set_xlabel("training step")
    per_epoch = len(loss) // max(epochs, 1)
    for ax in (ax_loss, ax_on):
        for k in range(per_epoch, len(loss), max(per_epoch, 1)):
            ax.axvline(k + 0.5, color="grey", linewidth=0.4, alpha=0.5)
    fig.suptitle(
        f"Gate: term on for {100 * gate['fraction_on']:.0f}% of {len(loss)} steps, {len(gate['switches'])} switches"
    )
    return fig
