"""Figures of the data stage: identities, nuisance factors, a video filmstrip, the eigenfaces result.

Each function returns a matplotlib Figure built with the object API (no global pyplot state), so it
works the same in a notebook and in a headless run.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from matplotlib.figure import Figure

from benchmark.data.faceset import FaceSet
from benchmark.data.synthetic import Nuisance, render_face
from benchmark.data.synthetic_video import DEFECTS, VideoSet


def identity_grid(faces: FaceSet, identities: int = 8, per_identity: int = 8) -> Figure:
    """One row per identity (the first ``identities``), up to ``per_identity`` images each."""
    counts = np.bincount(faces.labels)
    chosen = [i for i in np.flatnonzero(counts >= 1)][:identities]
    fig = Figure(figsize=(1.1 * per_identity, 1.1 * len(chosen)))
    axes = fig.subplots(len(chosen), per_identity, squeeze=False)
    for r, label in enumerate(chosen):
        idx = np.flatnonzero(faces.labels == label)[:per_identity]
        for c in range(per_identity):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(idx):
                ax.imshow(faces.images[idx[c]])
        axes[r, 0].set_title(faces.identities[label], fontsize=7, loc="left")
    fig.suptitle("Identities (rows) under nuisance factors")
    return fig


SWEEPS: tuple[tuple[str, tuple[dict, ...]], ...] = (
    ("yaw", tuple({"yaw": v} for v in (-30, -15, 0, 15, 30))),
    ("pitch", tuple({"pitch": v} for v in (-14, -7, 0, 7, 14))),
    ("roll", tuple({"roll": v} for v in (-10, -5, 0, 5, 10))),
    ("expression", ({"smile": -0.5}, {"smile": 0.0}, {"smile": 1.0}, {"mouth_open": 0.8}, {"eye_open": 0.2})),
    ("light direction", tuple({"light_azimuth": v, "diffuse": 0.8, "ambient": 0.3} for v in (-60, -30, 0, 30, 60))),
    ("light intensity", tuple({"ambient": v, "diffuse": v} for v in (0.15, 0.3, 0.45, 0.6, 0.75))),
    ("light colour", ({"tint_r": 1.12, "tint_b": 0.88}, {"tint_r": 1.06}, {}, {"tint_b": 1.06}, {"tint_r": 0.88, "tint_b": 1.12})),
    ("occlusion", ({}, {"glasses": True}, {"mask": True}, {"fringe": True}, {"occluder": 0.5})),
    ("blur", tuple({"blur": v} for v in (0.0, 0.5, 1.0, 1.5, 2.0))),
    ("noise", tuple({"noise": v} for v in (0.0, 0.02, 0.04, 0.06, 0.08))),
    ("JPEG quality", tuple({"jpeg_quality": v} for v in (100, 60, 40, 20, 10))),
    ("alignment", ({"scale": 0.9}, {"scale": 1.1}, {}, {"shift_x": 0.07}, {"shift_y": -0.07})),
)


def nuisance_sweep(identity: np.ndarray, size: int = 64) -> Figure:
    """One identity, each nuisance factor varied alone from a clean frontal view (one row per factor)."""
    base = Nuisance(background=12345)
    fig = Figure(figsize=(6.5, 1.15 * len(SWEEPS)), layout="constrained")
    axes = fig.subplots(len(SWEEPS), 5, squeeze=False)
    for r, (name, settings) in enumerate(SWEEPS):
        for c, change in enumerate(settings):
            axes[r, c].imshow(render_face(identity, replace(base, **change), size))
            axes[r, c].axis("off")
        axes[r, 0].set_title(name, fontsize=8, loc="left")
    fig.suptitle("Nuisance factors, one at a time")
    return fig


def filmstrip(videos: VideoSet, index: int = 0) -> Figure:
    """The frames of one video with their ground-truth quality and defect."""
    frames, quality, defect = videos.frames[index], videos.quality[index], videos.defect[index]
    t = len(frames)
    fig = Figure(figsize=(max(8.0, 0.75 * t), 2.6))
    axes = fig.subplots(2, t, gridspec_kw={"height_ratios": [1.0, 0.9]}, squeeze=False)
    for k in range(t):
        axes[0, k].imshow(frames[k])
        axes[0, k].axis("off")
        axes[0, k].set_title(DEFECTS[defect[k]].replace("_", "\n"), fontsize=6)
        axes[1, k].bar([0], [quality[k]], color="tab:green" if defect[k] == 0 else "tab:red")
        axes[1, k].set_ylim(0, 1)
        axes[1, k].set_xticks([])
        axes[1, k].set_yticks([0, 0.5, 1] if k == 0 else [])
        axes[1, k].set_xlabel(f"{quality[k]:.2f}", fontsize=6)
    fig.suptitle(f"Video of identity {videos.labels[index]}: frames and ground-truth quality")
    return fig
