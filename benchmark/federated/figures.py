"""Figures of the ``federated`` stage, from its metrics dict (``reports/metrics/federated.json``)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

MODES = ("third_party", "blind", "plaintext", "centralized")
PHASES = ("encrypt_seconds", "aggregate_seconds", "decrypt_seconds")


def accuracy_per_round(metrics: dict) -> Figure:
    """Verification accuracy on the test pairs after each round, one line per mode."""
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    for mode in MODES:
        if mode in metrics:
            acc = metrics[mode]["accuracy"]
            style = "--" if mode == "centralized" else "-"
            ax.plot(np.arange(1, len(acc) + 1), acc, style, marker="o", label=mode)
    ax.set_xticks(np.arange(1, max(len(metrics[m]["accuracy"]) for m in MODES if m in metrics) + 1))
    ax.set_xlabel("round")
    ax.set_ylabel("verification accuracy (10-fold)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.suptitle("Accuracy per round")
    return fig


def cost_per_round(metrics: dict) -> Figure:
    """Left: encrypt / aggregate / decrypt seconds per round (stacked), beside local training seconds.
    Right: bytes institutions sent per round, ciphertext vs the same updates as float32."""
    modes = [m for m in ("third_party", "blind") if m in metrics]
    fig = Figure(figsize=(11, 3.8))
    ax_t, ax_b = fig.subplots(1, 2)
    width = 0.8 / max(len(modes) + 1, 1)
    for j, mode in enumerate(modes):
        m = metrics[mode]
        x = np.arange(1, len(m["accuracy"]) + 1) + (j - len(modes) / 2) * width
        bottom = np.zeros(len(x))
        for phase in PHASES:
            ax_t.bar(x, m[phase], width, bottom=bottom, label=f"{mode}: {phase.split('_')[0]}")
            bottom += np.asarray(m[phase])
        ax_b.bar(x, np.asarray(m["bytes_sent"]) / 1e6, width, label=f"{mode}: ciphertext")
    if modes:
        ref = metrics[modes[0]]
        x = np.arange(1, len(ref["accuracy"]) + 1) + (len(modes) / 2) * width
        ax_t.bar(x, ref["train_seconds"], width, color="grey", label="local training (all institutions)")
        ax_b.bar(x, np.asarray(ref["bytes_plaintext"]) / 1e6, width, color="grey", label="float32 plaintext")
    rounds = np.arange(1, len(metrics[modes[0]]["accuracy"]) + 1) if modes else []
    for ax in (ax_t, ax_b):
        ax.set_xticks(rounds)
    ax_t.set_xlabel("round")
    ax_t.set_ylabel("seconds (all parties)")
    ax_t.legend(fontsize=7)
    ax_b.set_xlabel("round")
    ax_b.set_ylabel("MB sent to the server")
    ax_b.set_yscale("log")
    ax_b.legend(fontsize=7)
    fig.suptitle("Cost per round")
    return fig
