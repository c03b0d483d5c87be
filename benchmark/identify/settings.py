"""The ``identify`` section of params.yaml: frame-quality thresholds, video sampling, open-set FAR.

Plain frozen dataclasses in the style of :mod:`benchmark.config` (range metadata that
``config.build`` validates), kept apart from the algorithms so that loading the config imports
neither OpenCV nor FAISS. Every quality value is unitless in [0, 1]; see
:mod:`benchmark.identify.quality` for how each is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError


def _num(default: float, lo: float | None, hi: float | None, ends: str = "[]") -> Any:
    return field(default=default, metadata={"range": (lo, hi, ends)})


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds a frame must pass to be selected (``quality.select_frame``).

    assume_cropped:  the frames are face crops (e.g. the synthetic videos): no detector runs,
                     confidence and face size are not checked, and ``min_symmetry`` replaces
                     ``min_frontalness``.
    min_confidence:  MTCNN face probability of the frame's main face.
    min_face_size:   the face box's longer side over the frame's shorter side.
    min_sharpness:   normalized variance of the Laplacian of the face region (0.5 = the reference).
    min_brightness / max_brightness: mean grey level of the face region (0 black, 1 white).
    max_clipped:     share of face-region pixels at the ends of the grey range (<= 2% or >= 98%).
    min_frontalness: landmark symmetry (1 frontal, 0 nose at an eye or mouth corner: about 45+ deg yaw).
    min_symmetry:    mirror symmetry of the crop's gradients (assume_cropped only).
    """

    assume_cropped: bool = False
    min_confidence: float = _num(0.9, 0.0, 1.0)
    min_face_size: float = _num(0.1, 0.0, 1.0)
    min_sharpness: float = _num(0.25, 0.0, 1.0, "[)")
    min_brightness: float = _num(0.15, 0.0, 1.0)
    max_brightness: float = _num(0.85, 0.0, 1.0)
    max_clipped: float = _num(0.25, 0.0, 1.0)
    min_frontalness: float = _num(0.4, 0.0, 1.0)
    min_symmetry: float = _num(0.2, 0.0, 1.0)

    def __post_init__(self) -> None:
        if self.min_brightness >= self.max_brightness:
            raise ConfigError(
                f"'identify.quality.min_brightness' ({self.min_brightness}) must be below "
                f"'identify.quality.max_brightness' ({self.max_brightness})"
            )


@dataclass(frozen=True)
class IdentifyConfig:
    """Identification from a face video (issue 4).

    far:        the open-set threshold is the verification ROC's operating point at this FAR.
    every:      keep every ``every``-th frame of a video file.
    max_frames: keep at most this many frames, spread evenly over the clip.
    database:   the identity database's SQLite file (its FAISS index lies beside it), repo-relative.
    model:      the embedder: ``semisupervised`` (the patent's model, trained by its stage) or ``pretrained``
                (the converted FaceNet, for faces cut as its geometry; its thresholds from validation pairs).
    """

    model: str = field(default="semisupervised", metadata={"choices": ("semisupervised", "pretrained")})
    far: float = _num(1e-3, 0.0, 1.0, "(]")
    every: int = _num(1, 1, 10_000)
    max_frames: int = _num(64, 1, 100_000)
    database: str = "artifacts/identify/identities.sqlite"
    quality: QualityConfig = field(default_factory=QualityConfig)
