"""Face geometry: how a detected face becomes a model's input crop.

Two policies, the two the field trains with:

* ``arcface``: the 5-point similarity transform (rotation, uniform scale, translation) that maps MTCNN's
  landmarks (eyes, nose, mouth corners) onto the ArcFace 112x112 template (Deng et al. 2019, insightface
  ``arcface_src``), the template scaled by ``size / 112`` for other sizes. Estimated in the least-squares
  sense by :class:`skimage.transform.SimilarityTransform` (Umeyama 1991), applied with ``cv2.warpAffine``.
* ``box``: FaceNet's crop (Schroff et al. 2015; David Sandberg's ``align_dataset_mtcnn``): the MTCNN box
  grown by ``margin`` pixels *of the output* (``margin * box_side / (size - margin)`` image pixels, as
  facenet-pytorch computes it), clipped to the image, and resized to ``size`` x ``size`` (not squared first,
  as FaceNet was trained).

A face that was not detected (a crop taken as it is) goes through :func:`~benchmark.data.images.resize_face`.
Each backbone declares the :class:`Geometry` it expects; a :class:`Geometry` is a value, so the same kept
detections give crops for any model without a second detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

# insightface's ArcFace template: (x, y) of left eye, right eye, nose, left and right mouth corner at 112x112.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
POLICIES = ("arcface", "box")


@dataclass(frozen=True)
class Geometry:
    """A model's input crop: ``size`` pixels square, cut by ``policy`` (``arcface`` | ``box``); ``margin``
    is the box policy's margin in output pixels (FaceNet: 32 at 160)."""

    size: int
    policy: str = "arcface"
    margin: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.size, (int, np.integer)) or isinstance(self.size, bool) or self.size < 8:
            raise ValueError(f"geometry size must be an integer >= 8 pixels, got {self.size!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"geometry policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if not 0 <= self.margin < self.size:
            raise ValueError(f"geometry margin must be in [0, size) pixels, got {self.margin} for size {self.size}")

    def describe(self) -> str:
        """``arcface 112px`` or ``box+32px 160px``; :meth:`parse` reads it back."""
        return f"{self.policy}{f'+{self.margin}px' if self.margin else ''} {self.size}px"

    @classmethod
    def parse(cls, text: str) -> "Geometry":
        """The Geometry that :meth:`describe` wrote as ``text``; ValueError naming the text otherwise."""
        cut, _, size = str(text).partition(" ")
        policy, _, margin = cut.partition("+")
        try:
            return cls(int(size.removesuffix("px")), policy, int(margin.removesuffix("px") or 0))
        except ValueError as err:
            raise ValueError(f"{text!r} is not a face geometry such as 'arcface 112px' or 'box+32px 160px'") from err


def template(size: int) -> np.ndarray:
    """The ArcFace 5-point template for a ``size`` x ``size`` crop, float (5, 2)."""
    return ARCFACE_TEMPLATE_112 * (size / 112.0)


def similarity_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) affine matrix of the similarity transform taking ``landmarks`` (5, 2) onto the template."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2) or not np.isfinite(landmarks).all():
        raise ValueError(f"landmarks must be finite, shape (5, 2), got {landmarks.shape}")
    tform = SimilarityTransform.from_estimate(landmarks, template(size))
    if not tform:
        raise ValueError(f"landmarks are degenerate: no similarity transform onto the template ({tform})")
    return np.asarray(tform.params[:2], dtype=np.float64)


def align_arcface(img: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """uint8 (size, size, 3) crop of ``img`` (H, W, 3) warped so its landmarks sit on the ArcFace template;
    parts outside the image are black."""
    matrix = similarity_matrix(landmarks, size)
    return cv2.warpAffine(np.ascontiguousarray(img), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def crop_box(img: np.ndarray, box: tuple[float, float, float, float], size: int, margin: int) -> np.ndarray:
    """uint8 (size, size, 3): the box grown by ``margin`` output pixels, clipped to the image, resized."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx = margin * (x2 - x1) / (size - margin)
    my = margin * (y2 - y1) / (size - margin)
    left, top = int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0))
    right, bottom = int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))
    if right - left < 2 or bottom - top < 2:
        raise ValueError(f"face box {tuple(round(v, 1) for v in box)} lies outside the {w}x{h} image")
    patch = np.ascontiguousarray(img[top:bottom, left:right])
    interpolation = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def cut(img: np.ndarray, box: np.ndarray, landmarks: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The crop of one detected face under ``geometry`` (box (4,), landmarks (5, 2) in image pixels)."""
    if geometry.policy == "arcface":
        return align_arcface(img, landmarks, geometry.size)
    return crop_box(img, tuple(box), geometry.size, geometry.margin)
