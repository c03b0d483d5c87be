"""Figure helpers shared by the stages: atomic PNG saving and the verification figure."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from benchmark.evaluation.verification import roc_points
from benchmark.io import atomic_path


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> str:
    """Save ``fig`` as PNG at ``path`` atomically; returns the path as a string."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return str(path)


def verification_figure(scores: np.ndarray, is_same: np.ndarray, title: str) -> Figure:
    """ROC curve (log FAR) and the genuine/impostor score histograms."""
    far, tar, _ = roc_points(scores, is_same)
    fig = Figure(figsize=(9, 3.4))
    ax_roc, ax_hist = fig.subplots(1, 2)
    ax_roc.plot(np.maximum(far, 1e-4), tar)
    ax_roc.set_xscale("log")
    ax_roc.set_xlabel("false accept rate")
    ax_roc.set_ylabel("true accept rate")
    ax_roc.grid(True, alpha=0.3)
    bins = np.linspace(scores.min(), scores.max(), 40)
    ax_hist.hist(scores[is_same == 1], bins=bins, alpha=0.6, label="genuine")
    ax_hist.hist(scores[is_same == 0], bins=bins, alpha=0.6, label="impostor")
    ax_hist.set_xlabel("cosine similarity")
    ax_hist.legend()
    fig.suptitle(title)
    return fig
