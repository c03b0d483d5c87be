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

from benchmark.data.align import Geometry
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
    image_size:    the crops the model takes: S pixels on the ArcFace template, or a :class:`Geometry`
                   (e.g. FaceNet's box with a margin at 160 px).
    For a checkpoint: ``Embedder(lambda x: embed_images(model, x), model.embedding_dim,
    model.model_id, model.crop_geometry)``.
    """

    embed: Callable[[np.ndarray], np.ndarray]
    embedding_dim: int
    model_id: str
    image_size: int | Geometry = 64

    @property
    def geometry(self) -> Geometry:
        """The crop as a :class:`Geometry`."""
        return self.image_size if isinstance(self.image_size, Geometry) else Geometry(int(self.image_size))


def face_crop(frame: np.ndarray, quality: FrameQuality, detector: FaceDetector | None,
              geometry: Geometry) -> np.ndarray:
    """The face of a scored frame as uint8 (S, S, 3), S = ``geometry.size``: the detector crop cut as
    ``geometry`` when the frame has a detection, else the frame itself (``assume_cropped``) resized."""
    if quality.detection is not None and detector is not None:
        return detector.crop(frame, quality.detection, geometry)
    return resize_face(frame, geometry.size)


def identify_video(frames: np.ndarray, embedder: Embedder, db: IdentityDB, quality_cfg: QualityConfig, *,
                   threshold: float, detector: FaceDetector | None = None) -> dict:
    """Identify the person in a video.

    frames:      uint8 (T, H, W, 3) RGB (see :func:`benchmark.identify.video.read_video`).
    quality_cfg: thresholds; ``assume_cropped`` skips the detector (frames are face crops).
    threshold:   cosine score a match needs (e.g. ``threshold_at_far`` at FAR 1e-3).
    detector:    used unless ``assume_cropped`` (default: ``FaceDetector()``).
    Returns {"identity": name or "unknown", "id": row id or None, "score": best cosine score,
    "runner_up": {"identity", "score"} of the second-best enrolled identity (None with one enrolled),
    "threshold", "frame_index": selected frame's position in ``frames``, "quality": its
    measurements (dict), "per_frame": every frame's measurements (list of dicts)}.
    Raises NoUsableFrameError (listing each frame's failing checks) when no frame passes, and
    IdentityDBError for an empty database or a model/dimension mismatch.
    """
    if not quality_cfg.assume_cropped and detector is None:
        detector = FaceDetector()
    scores = score_frames(frames, quality_cfg, detector)
    best = select_frame(scores, quality_cfg)
    crop = face_crop(frames[best.index], best, detector, embedder.geometry)
    embedding = np.asarray(embedder.embed(crop[None]), dtype=np.float32)
    if embedding.shape != (1, embedder.embedding_dim):
        raise ValueError(f"embedder '{embedder.model_id}' returned shape {embedding.shape}, "
                         f"expected (1, {embedder.embedding_dim})")
    match = db.identify(embedding[0], threshold, model_id=embedder.model_id)
    ranked = db.search(embedding[0], 2, model_id=embedder.model_id)
    runner_up = {"identity": ranked[1].name, "score": ranked[1].score} if len(ranked) > 1 else None
    return {"identity": match.name, "id": match.id, "score": match.score, "runner_up": runner_up,
            "threshold": float(threshold),
            "frame_index": best.index, "quality": _as_dict(best), "per_frame": [_as_dict(q) for q in scores]}


def _as_dict(q: FrameQuality) -> dict:
    """A frame's measurements without the detection object (JSON-serializable)."""
    return {f.name: getattr(q, f.name) for f in fields(q) if f.name != "detection"}
