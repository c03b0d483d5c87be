"""Frame quality for video identification: score every frame, select the best one that passes.

Patent CN112364828B identifies a person from a face video by embedding one frame that passes
quality checks. Each frame gets these measurements, all unitless in [0, 1]:

* ``confidence``: MTCNN's probability for the frame's main face (largest box area x confidence);
* ``face_size``: that box's longer side over the frame's shorter side;
* ``sharpness``: variance of the Laplacian of the face region, grey, resized to 64 x 64 (the
  embedding resolution, so a small up-scaled face counts as blurred), divided by the region's grey
  variance (contrast-free) and mapped by r / (r + 0.5) (Pertuz et al. 2013, "LAP4" focus measure);
* ``brightness``: mean grey level of the face region; ``clipped``: share of its pixels at
  <= 2% or >= 98% grey (crushed shadows or blown highlights);
* ``frontalness`` (detector mode): from MTCNN's five landmarks, after levelling the eyes, how
  centred the nose is between the eyes and between the mouth corners: the mean over both pairs of
  1 - 2 |t - 1/2|, t being the nose's relative position from the left to the right point
  (1 frontal, 0 nose at or beyond an eye or mouth corner, about 45 deg yaw or more);
* ``symmetry`` (``assume_cropped`` mode): Pearson correlation of the crop's gradient magnitude
  with its left-right mirror image, clipped to [0, 1]; a turned, shifted or half-covered face
  breaks it. With ``assume_cropped`` the frame is the face region (no detector: confidence and
  face size are not measured); brightness and clipping use its central half (the face, not the
  background).

Combined quality (what "best" means): the product of the terms that are each 1 for a perfect
frame: confidence x frontalness x sharpness x exposure in detector mode and symmetry x sharpness x
exposure with ``assume_cropped``, where exposure = (1 - |2 brightness - 1|) x (1 - clipped). A
product is a weakest-link score: one bad aspect is enough to push a frame down. Face size is a
threshold only: its effect on recognition is already in ``sharpness`` (measured at 64 x 64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from benchmark.data.detect import Detection, FaceDetector
from benchmark.errors import DataError
from benchmark.identify.settings import QualityConfig

REGION_SIZE = 64
SHARPNESS_HALF = 0.5
CLIP_LOW, CLIP_HIGH = 0.02, 0.98
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class NoUsableFrameError(DataError):
    """No frame of a video passes every quality check; the message lists each frame's failures."""


@dataclass(frozen=True)
class FrameQuality:
    """The measurements of one frame (see the module docstring); None = not measured.

    index: position of the frame in the frames array. detection: the main face (detector mode).
    A frame with no face at all has confidence 0, face_size 0 and every other measurement None.
    """

    index: int
    confidence: float | None
    face_size: float | None
    sharpness: float | None
    brightness: float | None
    clipped: float | None
    frontalness: float | None
    symmetry: float | None
    combined: float
    detection: Detection | None = None


def to_gray(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float32 (H, W) luminance in [0, 1] (ITU-R BT.601 weights)."""
    return (img.astype(np.float32) @ _LUMA) / 255.0


def sharpness(gray: np.ndarray) -> float:
    """Normalized variance of the Laplacian of a grey region (H, W) in [0, 1], resized to 64 x 64."""
    region = cv2.resize(gray, (REGION_SIZE, REGION_SIZE), interpolation=cv2.INTER_AREA)
    contrast = float(region.var())
    if contrast < 1e-8:
        return 0.0
    ratio = float(cv2.Laplacian(region, cv2.CV_32F, ksize=1).var()) / contrast
    return ratio / (ratio + SHARPNESS_HALF)


def exposure(gray: np.ndarray) -> tuple[float, float]:
    """(brightness, clipped) of a grey region (H, W) in [0, 1]: mean level, share of clipped pixels."""
    return float(gray.mean()), float(np.mean((gray <= CLIP_LOW) | (gray >= CLIP_HIGH)))


def frontalness(landmarks: np.ndarray) -> float:
    """Landmark symmetry in [0, 1] from MTCNN's (5, 2) points: eyes, nose, mouth corners (x, y)."""
    left_eye, right_eye = landmarks[0], landmarks[1]
    angle = math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])
    x = (landmarks - landmarks[2]) @ np.array([math.cos(angle), math.sin(angle)])
    terms = []
    for left, right in ((x[0], x[1]), (x[3], x[4])):
        span = right - left
        t = -left / span if span > 1e-6 else 0.0
        terms.append(min(max(1.0 - 2.0 * abs(t - 0.5), 0.0), 1.0))
    return float(np.mean(terms))


def mirror_symmetry(gray: np.ndarray) -> float:
    """Correlation in [0, 1] of a grey region's (H, W) gradient magnitude with its mirror image."""
    region = cv2.resize(gray, (REGION_SIZE, REGION_SIZE), interpolation=cv2.INTER_AREA)
    magnitude = np.abs(cv2.Sobel(region, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(region, cv2.CV_32F, 0, 1))
    a = magnitude - magnitude.mean()
    b = a[:, ::-1]
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return 0.0 if denom < 1e-12 else min(max(float((a * b).sum()) / denom, 0.0), 1.0)


def _exposure_term(brightness: float, clipped: float) -> float:
    return (1.0 - abs(2.0 * brightness - 1.0)) * (1.0 - clipped)


def score_cropped(frame: np.ndarray, index: int = 0) -> FrameQuality:
    """Quality of a face crop, uint8 (H, W, 3) RGB, without a detector (``assume_cropped``)."""
    gray = to_gray(frame)
    h, w = gray.shape
    centre = gray[h // 4 : h - h // 4, w // 4 : w - w // 4]
    sharp, sym = sharpness(gray), mirror_symmetry(gray)
    brightness, clipped = exposure(centre)
    combined = sym * sharp * _exposure_term(brightness, clipped)
    return FrameQuality(index, None, None, sharp, brightness, clipped, None, sym, combined)


def score_detected(frame: np.ndarray, detection: Detection | None, index: int = 0) -> FrameQuality:
    """Quality of a frame, uint8 (H, W, 3) RGB, given its main face (None when none was found)."""
    if detection is None:
        return FrameQuality(index, 0.0, 0.0, None, None, None, None, None, 0.0)
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = detection.box
    left, top = min(max(int(x1), 0), w - 1), min(max(int(y1), 0), h - 1)
    right, bottom = max(min(int(math.ceil(x2)), w), left + 1), max(min(int(math.ceil(y2)), h), top + 1)
    gray = to_gray(frame[top:bottom, left:right])
    sharp, front = sharpness(gray), frontalness(detection.landmarks)
    brightness, clipped = exposure(gray)
    size = max(x2 - x1, y2 - y1) / min(h, w)
    combined = detection.confidence * front * sharp * _exposure_term(brightness, clipped)
    return FrameQuality(index, detection.confidence, size, sharp, brightness, clipped, front, None, combined,
                        detection)


def score_frames(frames: np.ndarray, cfg: QualityConfig, detector: FaceDetector | None = None) -> list[FrameQuality]:
    """Score every frame of a video.

    frames:   uint8 (T, H, W, 3) RGB.
    cfg:      ``cfg.assume_cropped`` picks the detector-free path.
    detector: used unless ``assume_cropped`` (default: a new ``FaceDetector()``); every candidate is
              considered (confidence is a check of its own) and the main face is the one with the
              largest box area x confidence.
    Returns one :class:`FrameQuality` per frame, in order.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
    if cfg.assume_cropped:
        return [score_cropped(frame, i) for i, frame in enumerate(frames)]
    detector = detector or FaceDetector()
    scores = []
    for i, frame in enumerate(frames):
        found = detector.detect(frame, min_confidence=0.0)
        main = max(found, key=lambda d: d.area * d.confidence) if found else None
        scores.append(score_detected(frame, main, i))
    return scores


# Every check: (measurement, the QualityConfig threshold it is held to, ">=" or "<=").
CHECKS = (
    ("confidence", "min_confidence", ">="),
    ("face_size", "min_face_size", ">="),
    ("sharpness", "min_sharpness", ">="),
    ("brightness", "min_brightness", ">="),
    ("brightness", "max_brightness", "<="),
    ("clipped", "max_clipped", "<="),
    ("frontalness", "min_frontalness", ">="),
    ("symmetry", "min_symmetry", ">="),
)


def failed_checks(q: FrameQuality, cfg: QualityConfig) -> list[str]:
    """The checks ``q`` fails under ``cfg``, each as 'name=value < threshold' (empty: it passes)."""
    if q.confidence == 0.0 and q.sharpness is None:
        return [f"no face found (confidence 0.00 < {cfg.min_confidence:.2f})"]
    failed = []
    for name, key, need in CHECKS:
        value, threshold = getattr(q, name), getattr(cfg, key)
        if value is None:
            continue
        ok = value >= threshold if need == ">=" else value <= threshold
        if not ok:
            failed.append(f"{name}={value:.2f} {'<' if need == '>=' else '>'} {threshold:.2f}")
    return failed


def select_frame(scores: list[FrameQuality], cfg: QualityConfig) -> FrameQuality:
    """The frame with the highest combined quality among those passing every check of ``cfg``.

    Ties go to the earliest frame. Raises :class:`NoUsableFrameError` when none passes, listing
    each frame's failing checks, e.g. ``frame 3: sharpness=0.12 < 0.25, frontalness=0.20 < 0.40``.
    """
    if not scores:
        raise ValueError("scores is empty: score at least one frame before selecting")
    failures = [(q, failed_checks(q, cfg)) for q in scores]
    passing = [q for q, failed in failures if not failed]
    if passing:
        return max(passing, key=lambda q: q.combined)
    lines = "\n".join(f"  frame {q.index}: {', '.join(failed)}" for q, failed in failures)
    raise NoUsableFrameError(f"no frame of {len(scores)} passes the quality checks:\n{lines}")
