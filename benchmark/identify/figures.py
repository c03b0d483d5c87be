"""Figures of the identification stage: measured vs true frame quality, the frames each rule picks, and the
open-set score distributions."""

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


def open_set_scores(top_scores: np.ndarray, known: np.ndarray, threshold: float) -> Figure:
    """Best database score of each query (A,), enrolled identities vs never-enrolled ones, with the threshold
    below which the answer is "unknown"."""
    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    bins = np.linspace(min(top_scores.min(), threshold) - 0.02, max(top_scores.max(), threshold) + 0.02, 30)
    ax.hist(top_scores[known], bins=bins, alpha=0.6, label="enrolled identity")
    if (~known).any():
        ax.hist(top_scores[~known], bins=bins, alpha=0.6, label="never enrolled")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("best cosine score in the identity database")
    ax.set_ylabel("queries")
    ax.legend(fontsize=8)
    return fig
