"""Short synthetic face videos with per-frame ground-truth quality.

Each video follows one identity through ``frames`` frames: the head sways (a smooth yaw path), the
expression drifts, and a share of frames is spoiled by one defect each, with a severity s in [0.5, 1]:

* ``motion_blur``: linear blur of 3 + 6 s pixels;
* ``dark``: ambient and diffuse light cut to a fraction, with more sensor noise;
* ``occluded``: an object (a hand, a phone) covers much of the face;
* ``turned_away``: yaw of 55 + 30 s degrees;
* ``out_of_frame``: the face shifted 0.6 + 0.5 s of the half-width sideways.

Ground-truth quality: 1 - 0.9 s for a spoiled frame, times the frontalness 1 - |yaw| / 120.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from benchmark.data.synthetic import identity_rng, render_face, sample_nuisance
from benchmark.parallel import ordered_map

DEFECTS = ("none", "motion_blur", "dark", "occluded", "turned_away", "out_of_frame")
VIDEO_STREAM = 7


@dataclass
class VideoSet:
    """frames uint8 (V, T, H, W, 3); labels (V,) identity labels; quality float32 (V, T) in [0, 1];
    defect int64 (V, T) indexing :data:`DEFECTS`."""

    frames: np.ndarray
    labels: np.ndarray
    quality: np.ndarray
    defect: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(vars(self))


def render_video(
    identity: np.ndarray, rng: np.random.Generator, frames: int, size: int, difficulty: float, spoiled_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One video: frames uint8 (T, size, size, 3), quality (T,), defect codes (T,); round(spoiled_share * T)
    frames spoiled, the defects taking turns."""
    base = replace(sample_nuisance(rng, 0.5 * difficulty), glasses=False, mask=False, fringe=False)
    phase = rng.uniform(0, 2 * math.pi)
    bad = rng.choice(frames, size=round(spoiled_share * frames), replace=False)
    defects = np.zeros(frames, np.int64)
    defects[bad] = 1 + rng.permutation(np.arange(len(bad)) % (len(DEFECTS) - 1))
    out, quality = [], np.zeros(frames, np.float32)
    for t in range(frames):
        sev = float(rng.uniform(0.5, 1.0))
        side = 1.0 if rng.random() < 0.5 else -1.0
        nz = replace(
            base,
            yaw=base.yaw * 0.5 + 20.0 * math.sin(2 * math.pi * t / frames + phase),
            smile=base.smile + 0.3 * math.sin(t / 3.0),
            background=base.background,
            noise=base.noise,
        )
        name = DEFECTS[defects[t]]
        if name == "motion_blur":
            nz = replace(nz, motion_blur=3.0 + 6.0 * sev)
        elif name == "dark":
            nz = replace(nz, ambient=0.05 + 0.15 * (1 - sev), diffuse=0.1, noise=nz.noise + 0.03 * sev)
        elif name == "occluded":
            nz = replace(nz, occluder=0.4 + 0.3 * sev)
        elif name == "turned_away":
            nz = replace(nz, yaw=side * (55.0 + 30.0 * sev))
        elif name == "out_of_frame":
            nz = replace(nz, shift_x=side * (0.6 + 0.5 * sev))
        out.append(render_face(identity, nz, size))
        spoil = 1.0 - 0.9 * sev if name != "none" else 1.0
        quality[t] = spoil * (1.0 - abs(nz.yaw) / 120.0)
    return np.stack(out), quality, defects


def generate(
    seed: int, params: np.ndarray, labels: np.ndarray, frames: int, size: int, difficulty: float,
    spoiled_share: float = 0.5, progress: bool = True, workers: int | None = None, desc: str = "synthetic videos"
) -> VideoSet:
    """One video for each identity label in ``labels`` (rows of ``params`` are identity vectors), with
    ``spoiled_share`` of each video's frames spoiled (default 0.5: a random frame is spoiled half the time, the
    situation frame selection is for), rendered in ``workers`` processes (default: one per CPU core; the output
    does not depend on it)."""
    tasks = [(identity_rng(seed, int(label), stream=VIDEO_STREAM), params[label], frames, size, difficulty, spoiled_share)
             for label in labels]
    videos = ordered_map(_render_task, tasks, desc, "video", workers, progress)
    clips, quality, defects = (np.stack(part) for part in zip(*videos))
    return VideoSet(clips, np.asarray(labels, np.int64), quality, defects)


def _render_task(task: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng, identity, frames, size, difficulty, spoiled_share = task
    return render_video(identity, rng, frames, size, difficulty, spoiled_share)
