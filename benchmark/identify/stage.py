"""The ``identification`` stage: identify people from the synthetic test videos (patent CN112364828B's use).

With the semi-supervised model (or the converted FaceNet, ``identify.model: pretrained``): enrol the gallery (one
identity record per known test identity) in an :class:`~benchmark.identify.database.IdentityDB` (SQLite + FAISS),
score every video frame's quality, and compare rank-1 with the selected frame, a random frame and the worst frame.
The quality gate that decides which frames may be selected is calibrated first, on the validation identities'
videos (:mod:`benchmark.identify.calibration`), never on the test videos; ``quality_gate`` holds its thresholds
beside params.yaml's, the pass rates of both on the calibration frames and the rank-1 params.yaml's gate would give;
the open-set threshold is the model's threshold at ``identify.far`` on the training source's validation pairs (never
the test pairs). Writes ``<reports>/metrics/identification.json`` (``rank1_selected_frame``, ``rank1_random_frame``,
``rank1_worst_frame``, ``quality_spearman``, ``gallery_size``, ``model`` and the open-set figures), and the paired
test of the selected frame against a random one on the same videos: ``selection_p_value`` (McNemar's exact test)
and ``selection_difference`` (rank-1 difference with its 95% bootstrap interval over videos).

A data set without videos (a folder of faces, LFW) is identified from its probe still images instead: the
same database and threshold, ``videos`` 0, ``probes`` and the open-set figures only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmark import io
from benchmark.config import Params
from benchmark.device import resolve
from benchmark.data.detect import FaceDetector
from benchmark.evaluation.calibration import threshold_for_far
from benchmark.identify.database import IdentityDB
from benchmark.evaluation.paired import paired_difference
from benchmark.identify.evidence import frame_choices, quality_spearman, rank1_by_choice
from benchmark.identify.calibration import calibrate
from benchmark.identify.quality import FrameQuality, failed_checks, score_frames
from benchmark.identify.settings import QualityConfig
from benchmark.models.checkpoint import embed_images, load_model, model_identity
from benchmark.data.dataset import load_dataset
from benchmark.train.recipe import PRETRAINED_VARIANT, check_crops, pretrained_variant


@dataclass
class IdentificationResult:
    """What the notebook shows. The video fields are None for a data set without videos (folder, LFW)."""

    metrics: dict
    top_scores: np.ndarray  # (A,) best database score of each answered query (video or probe still)
    known: np.ndarray  # (A,) whether the query's identity is enrolled
    measured: np.ndarray | None = None  # (V, T) combined quality score
    passed: np.ndarray | None = None  # (V, T) frame passes every check
    truth: np.ndarray | None = None  # (V, T) ground-truth quality
    choices: dict | None = None  # name -> (V,) frame index
    frames: np.ndarray | None = None  # (V, T, H, W, 3)


def run(params: Params) -> IdentificationResult:
    """Run the stage with validated ``params``: on the test videos when the data stage made them (synthetic
    data), otherwise on the probe still images (a folder of faces or LFW brings no videos)."""
    artifacts = Path(params.paths.artifacts)
    data = load_dataset(params)
    p = data.protocol
    name = params.identify.model
    device = resolve(params.device)
    if name == PRETRAINED_VARIANT:
        model = pretrained_variant(params, device)
    else:
        model = load_model(artifacts / "models" / f"{name}.pt").to(device)
    check_crops(model, data.geometry.describe(), "the training source")
    threshold = threshold_for_far(model.meta["validation"], params.identify.far)
    gallery_emb = embed_images(model, data.images[p.gallery])
    gallery_labels = data.labels[p.gallery]
    db_path = Path(params.identify.database)
    for stale in (db_path, db_path.with_name(db_path.name + ".faiss")):
        stale.unlink(missing_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    video_file = artifacts / "data" / "videos.npz"
    model_id = model_identity(model, model.crop_geometry or data.geometry)
    with IdentityDB.create(db_path, model.embedding_dim, model_id, threshold=threshold, far=params.identify.far) as db:
        people = [(f"identity_{label}", gallery_emb[gallery_labels == label], {"label": int(label)}) for label in np.unique(gallery_labels)]
        db.enroll_many(people, model_id=model_id)
        if video_file.is_file():
            result = _videos(params, video_file, model, model_id, db, gallery_emb, gallery_labels, threshold)
        else:
            probe_emb = embed_images(model, data.images[p.probes])
            answers = [db.identify(e, threshold, model_id=model_id) for e in probe_emb]
            labels = data.labels[p.probes]
            metrics = {"videos": 0, "probes": int(len(p.probes)),
                       "open_set": _open_set(answers, labels, gallery_labels, params.identify.far, threshold)}
            result = IdentificationResult(metrics, np.array([a.score for a in answers]), np.isin(labels, gallery_labels))
    result.metrics["gallery_size"] = len(people)
    result.metrics["model"] = name
    io.write_json(Path(params.paths.reports) / "metrics" / "identification.json", result.metrics)
    return result


def _score(frames: np.ndarray, cfg: QualityConfig, detector: FaceDetector | None, desc: str) -> list[list[FrameQuality]]:
    """The quality of every frame of every video (V, T, H, W, 3)."""
    return [score_frames(video, cfg, detector) for video in tqdm(frames, desc=desc, unit="video")]


def _open_set(answers: list, labels: np.ndarray, gallery_labels: np.ndarray, far: float, threshold: float) -> dict:
    """Share of known identities named correctly and of unknown ones answered "unknown"."""
    known = np.isin(labels, gallery_labels)
    named = np.array([a.name for a in answers])
    expected = np.array([f"identity_{label}" for label in labels])
    return {
        "far": far,
        "threshold": float(threshold),
        "known_correct": float(np.mean(named[known] == expected[known])) if known.any() else None,
        "unknown_rejected": float(np.mean(named[~known] == "unknown")) if (~known).any() else None,
    }


def _videos(params: Params, video_file: Path, model, model_id: str, db: IdentityDB, gallery_emb: np.ndarray,
            gallery_labels: np.ndarray, threshold: float) -> IdentificationResult:
    """Score every frame's quality, compare the frame choices' rank-1, and identify each video's selected frame."""
    with np.load(video_file) as v:
        frames, video_labels, truth, defect = v["frames"], v["labels"], v["quality"], v["defect"]
    with np.load(video_file.with_name("calibration_videos.npz")) as v:
        calibration_frames, calibration_defect = v["frames"], v["defect"]
    detector = None if params.identify.quality.assume_cropped else FaceDetector()
    calibration = _score(calibration_frames, params.identify.quality, detector, "calibration videos")
    cfg, gate = calibrate(calibration, calibration_defect > 0, params.identify.quality)
    qualities = _score(frames, cfg, detector, "frame quality")
    measured = np.array([[q.combined for q in video] for video in qualities])
    frame_emb = embed_images(model, frames.reshape(-1, *frames.shape[2:])).reshape(*frames.shape[:2], -1)
    gates = {}
    for name, gate_cfg in (("calibrated", cfg), ("params", params.identify.quality)):
        passed = np.array([[not failed_checks(q, gate_cfg) for q in video] for video in qualities])
        choices, no_pass = frame_choices(measured, passed, truth, params.seed)
        gates[name] = (passed, choices, no_pass, rank1_by_choice(frame_emb, video_labels, gallery_emb, gallery_labels,
                                                                 choices))
    passed, choices, no_pass, rank1 = gates["calibrated"]
    gate["rank1_selected_frame_params_gate"] = gates["params"][3]["selected"]
    gate["calibration_videos"] = int(len(calibration_frames))
    selection = paired_difference(rank1["correct"]["selected"], rank1["correct"]["random"], seed=params.seed)
    selected = frame_emb[np.arange(len(frames)), choices["selected"]]
    answers = [db.identify(e, threshold, model_id=model_id) for e in selected]
    spearman = quality_spearman(measured, truth)
    metrics = {
        "rank1_selected_frame": rank1["selected"],
        "rank1_random_frame": rank1["random"],
        "rank1_worst_frame": rank1["worst"],
        "rank1_best_frame_oracle": rank1["best"],
        "selection_p_value": selection["p_value"],
        "selection_difference": {k: selection[k] for k in ("difference", "ci", "a_only", "b_only")},
        "closed_set_videos": rank1["videos"],
        "spoiled_share": float(np.mean(defect > 0)),
        "quality_spearman": spearman["pooled"],
        "quality_spearman_within_video": spearman["within_video"],
        "videos": int(len(frames)),
        "videos_without_passing_frame": no_pass,
        "quality_gate": gate,
        "open_set": _open_set(answers, video_labels, gallery_labels, params.identify.far, threshold),
    }
    top_scores, known = np.array([a.score for a in answers]), np.isin(video_labels, gallery_labels)
    return IdentificationResult(metrics, top_scores, known, measured, passed, truth, choices, frames)
