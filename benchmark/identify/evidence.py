"""Evidence that frame selection matters: on synthetic videos with per-frame ground truth, and on a real clip.

Pure functions for the identification notebook (issue 4, ``reports/metrics/identification.json``):

* :func:`quality_spearman`: Spearman rank correlation between the measured combined quality
  (``quality.FrameQuality.combined``) and the ground-truth quality of
  :mod:`benchmark.data.synthetic_video`, pooled over every frame and averaged within videos;
* :func:`frame_choices`: per video, the selected frame (best passing), a random frame (seeded)
  and the worst frame by ground truth, plus the best by ground truth (an oracle upper bound);
* :func:`rank1_by_choice`: closed-set rank-1 identification with each choice of frame, and each video's outcome
  (for a paired test between two choices on the same videos);
* :func:`clip_choices`: the same three choices on a real clip of one known person, which has no per-frame ground
  truth: whether the selected and the worst-scored frame name that person, and the share of its frames that do
  (what a frame drawn at random gets right on average).

Shapes: V videos of T frames; ``measured``, ``truth`` and ``passed`` are (V, T).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from benchmark.evaluation.identification import rank_k_hits, similarity_matrix


def _check_grid(**arrays: np.ndarray) -> tuple[int, int]:
    shapes = {name: np.shape(a) for name, a in arrays.items()}
    first = next(iter(shapes.values()))
    if len(first) != 2 or first[0] == 0 or first[1] == 0 or any(s != first for s in shapes.values()):
        raise ValueError(f"expected non-empty (V, T) arrays of one shape, got {shapes}")
    return first


def quality_spearman(measured: np.ndarray, truth: np.ndarray) -> dict:
    """{"pooled": rho over all V*T frames, "within_video": mean rho over videos (videos where either
    side is constant are left out), "videos": how many videos entered that mean}."""
    _check_grid(measured=measured, truth=truth)
    measured, truth = np.asarray(measured, np.float64), np.asarray(truth, np.float64)
    pooled = float(spearmanr(measured.ravel(), truth.ravel())[0])
    within = [float(spearmanr(m, t)[0]) for m, t in zip(measured, truth) if np.ptp(m) > 0 and np.ptp(t) > 0]
    return {"pooled": pooled, "within_video": float(np.mean(within)) if within else float("nan"),
            "videos": len(within)}


def frame_choices(measured: np.ndarray, passed: np.ndarray, truth: np.ndarray,
                  seed: int) -> tuple[dict[str, np.ndarray], int]:
    """(choices, no_passing_frame): a frame index (V,) per video for each way of choosing a frame,
    and how many videos had no frame passing every check.

    selected: highest measured quality among the frames that pass every check; a video where no
              frame passes falls back to its highest measured quality (reported, so a reader knows
              how often the fallback was used).
    random:   uniform, ``np.random.default_rng(seed)``.
    worst / best: lowest / highest ground-truth quality.
    """
    v, t = _check_grid(measured=measured, passed=passed, truth=truth)
    measured, passed = np.asarray(measured, np.float64), np.asarray(passed, bool)
    gated = np.where(passed, measured, -np.inf)
    none_pass = ~passed.any(axis=1)
    selected = np.where(none_pass, measured.argmax(axis=1), gated.argmax(axis=1))
    choices = {"selected": selected, "random": np.random.default_rng(seed).integers(0, t, v),
               "worst": np.asarray(truth).argmin(axis=1), "best": np.asarray(truth).argmax(axis=1)}
    return choices, int(none_pass.sum())


def rank1_by_choice(frame_embeddings: np.ndarray, video_labels: np.ndarray, gallery_embeddings: np.ndarray,
                    gallery_labels: np.ndarray, choices: dict) -> dict:
    """Closed-set rank-1 with each choice of frame.

    frame_embeddings (V, T, D); video_labels (V,); gallery_embeddings (G, D); gallery_labels (G,);
    choices: name -> frame index (V,) (e.g. from :func:`frame_choices`). Only videos whose identity
    is in the gallery count (closed set); returns {name: rank-1, ..., "videos": how many counted,
    "correct": {name: bool (videos,), each counted video's top match right or not}}.
    """
    frame_embeddings = np.asarray(frame_embeddings)
    video_labels = np.asarray(video_labels)
    if frame_embeddings.ndim != 3 or video_labels.shape != frame_embeddings.shape[:1]:
        raise ValueError(f"frame_embeddings must be (V, T, D) and video_labels (V,), got "
                         f"{frame_embeddings.shape} and {video_labels.shape}")
    mated = np.isin(video_labels, gallery_labels)
    if not mated.any():
        raise ValueError("no video's identity is in the gallery: closed-set rank-1 is undefined")
    rows = np.flatnonzero(mated)
    out, correct = {}, {}
    for name, index in choices.items():
        probes = frame_embeddings[rows, np.asarray(index)[rows]]
        sim = similarity_matrix(probes, gallery_embeddings)
        correct[name] = rank_k_hits(sim, video_labels[rows], np.asarray(gallery_labels), 1)
        out[name] = float(correct[name].mean())
    out["videos"] = int(len(rows))
    out["correct"] = correct
    return out


def clip_choices(named: list[str | None], measured: np.ndarray, passed: np.ndarray, subject: str) -> dict:
    """Frame choices on a real clip of ``subject``: ``named[t]`` is the enrolled identity closest to frame t's face
    (None: no face found, a miss), ``measured`` (T,) its combined quality and ``passed`` (T,) whether it passes the
    gate. Returns ``{"selected", "worst"}`` (does the best passing frame / the lowest-scored frame with a face name
    ``subject``; the selected frame falls back to the best-scored one when none passes), ``"random"`` (the share of
    all T frames that name ``subject``: a random frame's expected rank-1), ``"frames"``, ``"frames_with_face"``,
    ``"frames_passing"`` and the frame indices ``selected_frame`` and ``worst_frame``."""
    measured, passed = np.asarray(measured, np.float64), np.asarray(passed, bool)
    if not (len(named) == len(measured) == len(passed)) or len(named) == 0:
        raise ValueError(f"named, measured and passed must be non-empty and of one length, got {len(named)}, "
                         f"{len(measured)} and {len(passed)}")
    face = np.array([n is not None for n in named])
    if not face.any():
        raise ValueError("no frame of the clip has a face: nothing to choose from")
    hit = np.array([n == subject for n in named])
    selected = int(np.argmax(np.where(passed, measured, -np.inf))) if passed.any() else int(np.argmax(measured))
    worst = int(np.argmin(np.where(face, measured, np.inf)))
    return {"selected": bool(hit[selected]), "random": float(hit.mean()), "worst": bool(hit[worst]),
            "frames": len(named), "frames_with_face": int(face.sum()), "frames_passing": int(passed.sum()),
            "selected_frame": selected, "worst_frame": worst}
