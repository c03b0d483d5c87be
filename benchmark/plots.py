"""Shared figure helpers: atomic PNG saving and a non-interactive backend outside notebooks."""

from __future__ import annotations

import os

from matplotlib.figure import Figure

from benchmark.io import atomic_path


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> str:
    """Save ``fig`` as PNG at ``path`` atomically; returns the path as a string."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return str(path)
