"""Identify the person in a face video (patent CN112364828B's application).

Score every frame (:mod:`benchmark.identify.quality`), select the best frame that passes the
thresholds, cut its face (aligned MTCNN crop, or the whole frame when ``assume_cropped``), embed it
and ask the identity database for an open-set answer: the best match when its cosine score reaches
the threshold, "unknown" otherwise. The threshold is the verification ROC's operating point at a
stated false accept rate (:func:`benchmark.evaluation.verification.threshold_at_far`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from benchmark.data.detect import FaceDetector
from benchmark.data.images import resize_face
from benchmark.identify.database import IdentityDB
from benchmark.identify.quality import FrameQuality, score_frames, select_frame
from benchmark.identify.settings import QualityConfig


@dataclass(frozen=True)
class Embedder:
    """A face model as the pipeline sees it.

    embed:         uint8 (N, S, S, 3) RGB face crops -> float32 (N, embedding_dim), L2-normalized.
    embedding_dim: D. model_id: names the model (the database refuses another model's vectors).
    image_size:    S, the crop side in pixels the model takes.
    For a checkpoint: ``Embedder(lambda x: embed_images(model, x), model.embedding_dim,
    model.model_id, image_size)``.
    """

    embed: Callable[[np.ndarray], np.ndarray]
    embedding_dim: int
    model_id: str
    image_size: int = 64


def face_crop(frame: np.ndarray, quality: FrameQuality, detector: FaceDetector | None, size: int) -> np.ndarray:
    """The face of a scored frame as uint8 (size, size, 3): the aligned detector crop when the frame
    has a detection, else the frame itself (``assume_cropped``) resized."""
    if quality.detection is not None and detector is not None:
        return detector.crop(frame, quality.detection, size)
    return resize_face(frame, size)


def identify_video(frames: np.ndarray, embedder: Embedder, db: IdentityDB, quality_cfg: QualityConfig, *,
                   threshold: float, detector: FaceDetector | None = None) -> dict:
    """Identify the person in a video.

    frames:      uint8 (T, H, W, 3) RGB (see :func:`benchmark.identify.video.read_video`).
    quality_cfg: thresholds; ``assume_cropped`` skips the detector (frames are face crops).
    threshold:   cosine score a match needs (e.g. ``threshold_at_far`` at FAR 1e-3).
    detector:    used unless ``assume_cropped`` (default: ``FaceDetector()``).
    Returns {"identity": name or "unknown", "id": row id or None, "score": best cosine score,
    "threshold", "frame_index": selected frame's position in ``frames``, "quality": its
    measurements (dict), "per_frame": every frame's measurements (list of dicts)}.
    Raises NoUsableFrameError (listing each frame's failing checks) when no frame passes, and
    IdentityDBError for an empty database or a model/dimension mismatch.
    """
    if not quality_cfg.assume_cropped and detector is None:
        detector = FaceDetector()
    scores = score_frames(frames, quality_cfg, detector)
    best = select_frame(scores, quality_cfg)
    crop = face_crop(frames[best.index], best, detector, embedder.image_size)
    embedding = np.asarray(embedder.embed(crop[None]), dtype=np.float32)
    if embedding.shape != (1, embedder.embedding_dim):
        raise ValueError(f"embedder '{embedder.model_id}' returned shape {embedding.shape}, "
                         f"expected (1, {embedder.embedding_dim})")
    match = db.identify(embedding[0], threshold, model_id=embedder.model_id)
    return {"identity": match.name, "id": match.id, "score": match.score, "threshold": float(threshold),
            "frame_index": best.index, "quality": _as_dict(best), "per_frame": [_as_dict(q) for q in scores]}


def _as_dict(q: FrameQuality) -> dict:
    """A frame's measurements without the detection object (JSON-serializable)."""
    return {f.name: getattr(q, f.name) for f in fields(q) if f.name != "detection"}
