"""Figures of the identification stage: measured vs true frame quality, and the frames each rule picks."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def quality_scatter(measured: np.ndarray, truth: np.ndarray, passed: np.ndarray) -> Figure:
    """Every frame's measured quality score against its ground-truth quality (V, T arrays)."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    ax.scatter(truth[passed], measured[passed], s=6, alpha=0.5, label="passes the checks")
    ax.scatter(truth[~passed], measured[~passed], s=6, alpha=0.5, label="fails a check")
    ax.set_xlabel("ground-truth quality")
    ax.set_ylabel("measured quality score")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def chosen_frames(frames: np.ndarray, choices: dict, videos: int = 6) -> Figure:
    """For the first ``videos`` videos, the frame each rule chose (columns: selected, random, worst)."""
    names = ("selected", "random", "worst")
    fig = Figure(figsize=(1.3 * len(names), 1.3 * videos))
    axes = fig.subplots(videos, len(names), squeeze=False)
    for r in range(videos):
        for c, name in enumerate(names):
            axes[r, c].imshow(frames[r, choices[name][r]])
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title(name, fontsize=9)
    fig.suptitle("Frame used for identification")
    return fig
