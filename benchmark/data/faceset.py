"""The in-memory face collection that every loader returns and the protocol builder consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Unusable:
    """An input file that could not be used, and why (listed in the manifest, never dropped silently)."""

    path: str
    reason: str


@dataclass
class FaceSet:
    """Aligned face crops with identity labels.

    images:     uint8, shape (N, H, W, 3), RGB (grayscale inputs are replicated to 3 channels).
    labels:     int64, shape (N,), index into ``identities``.
    identities: identity names, one per label value.
    sources:    one string per image: the file path it came from, or ``synthetic:<identity>:<k>``.
    unusable:   inputs that were skipped, with the reason.
    boxes, landmarks, confidence: the kept MTCNN detection of each image in its file's pixels, float32
                (N, 4) (x1, y1, x2, y2), (N, 5, 2) and (N,); NaN where the image was taken as a crop;
                None for generated faces.
    """

    images: np.ndarray
    labels: np.ndarray
    identities: list[str]
    sources: list[str]
    unusable: list[Unusable] = field(default_factory=list)
    boxes: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    confidence: np.ndarray | None = None

    @property
    def detected(self) -> np.ndarray:
        """bool (N,): True where the crop was cut from a detection (aligned), False where taken as a crop."""
        if self.confidence is None:
            return np.zeros(len(self.images), dtype=bool)
        return np.isfinite(self.confidence)

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        n = len(self.images)
        if self.labels.shape != (n,) or len(self.sources) != n:
            raise ValueError(f"labels {self.labels.shape} and sources ({len(self.sources)}) must match {n} images")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.identities)):
            raise ValueError("labels must index into identities")
