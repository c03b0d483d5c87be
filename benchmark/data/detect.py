"""Face detection and aligned cropping with MTCNN (facenet-pytorch).

MTCNN (Zhang et al. 2016, "Joint Face Detection and Alignment using Multitask Cascaded
Convolutional Networks") ships its weights inside the facenet-pytorch package, so nothing is
downloaded at run time. It returns a box, a confidence and five landmarks per face
(left eye, right eye, nose, left and right mouth corner, in image coordinates).

The network is built on first use (importing this module loads neither torch nor the weights),
runs on the CPU and is deterministic: the same image gives the same detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from benchmark.data.images import resize_face
from benchmark.errors import DataError


class NoFaceError(DataError):
    """No face at or above the detector's confidence threshold; the message says the best seen."""


@dataclass(frozen=True)
class Detection:
    """One detected face, in the pixel coordinates of the image passed to ``detect``.

    box:        (x1, y1, x2, y2), pixels, float; may reach outside the image.
    confidence: MTCNN output-stage face probability in [0, 1].
    landmarks:  float, shape (5, 2), (x, y) of left eye, right eye, nose, left and right mouth corner.
    """

    box: tuple[float, float, float, float]
    confidence: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)


class FaceDetector:
    """MTCNN wrapper: detect faces, pick the main one, cut an eye-levelled square crop.

    min_confidence: faces below this probability are not returned by ``detect`` (default 0.9).
    margin:         the crop's side is the box's longer side times (1 + margin) (default 0.2).
    max_side:       images whose longer side exceeds this many pixels are shrunk (area averaging)
                    to it before detection and the boxes/landmarks are scaled back, so a 2204 px
                    photo costs about as much as a 640 px one; faces smaller than about
                    ``min_face_size * longer_side / max_side`` pixels are then missed (default 640).
    min_face_size:  MTCNN's smallest face in pixels of the (shrunk) detection image (default 20).
    num_threads:    torch threads while MTCNN runs; the previous setting is restored afterwards
                    (default 1: MTCNN's small convolutions gain little from threads, and on a
                    2-core machine with the other core busy, 2 threads ran 10x slower than 1).
    """

    def __init__(self, min_confidence: float = 0.9, margin: float = 0.2, max_side: int = 640,
                 min_face_size: int = 20, num_threads: int = 1) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if max_side < 48 or min_face_size < 12 or num_threads < 1:
            raise ValueError(f"max_side must be >= 48, min_face_size >= 12 and num_threads >= 1, "
                             f"got {max_side}, {min_face_size}, {num_threads}")
        self.min_confidence = float(min_confidence)
        self.margin = float(margin)
        self.max_side = int(max_side)
        self.min_face_size = int(min_face_size)
        self.num_threads = int(num_threads)
        self._net = None

    def _mtcnn(self):
        """Build MTCNN on first use. Its last stage keeps candidates down to 0.5 (or
        ``min_confidence`` if lower) so that a rejection can report the best confidence seen."""
        if self._net is None:
            from facenet_pytorch import MTCNN

            floor = min(0.5, self.min_confidence)
            self._net = MTCNN(keep_all=True, device="cpu", min_face_size=self.min_face_size,
                              thresholds=[0.6, 0.7, floor], post_process=False).eval()
        return self._net

    def _run(self, img: np.ndarray):
        """MTCNN ``detect`` on uint8 (H, W, 3) with ``num_threads`` torch threads."""
        import torch

        net = self._mtcnn()
        previous = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            return net.detect(img, landmarks=True)
        finally:
            torch.set_num_threads(previous)

    def detect(self, img: np.ndarray, min_confidence: float | None = None) -> list[Detection]:
        """All faces with confidence >= ``min_confidence`` (default: the detector's), highest first.

        img: uint8, shape (H, W, 3), RGB.
        """
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"img must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
        threshold = self.min_confidence if min_confidence is None else min_confidence
        h, w = img.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = img if scale == 1.0 else cv2.resize(
            img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        boxes, probs, points = self._run(np.ascontiguousarray(small))
        if boxes is None:
            return []
        # probs may come back as an object array (None for "no face"); make it plain floats.
        confidences = np.asarray([float(p) for p in probs], dtype=np.float64)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale
        points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2) / scale
        found = [Detection(tuple(float(v) for v in box), float(conf), pts)
                 for box, conf, pts in zip(boxes, confidences, points) if conf >= threshold]
        return sorted(found, key=lambda d: -d.confidence)

    def main_face(self, img: np.ndarray) -> Detection:
        """The face with the largest area x confidence among those >= ``min_confidence``.

        Raises NoFaceError("no face found (best confidence 0.42 < 0.90)") when there is none.
        """
        candidates = self.detect(img, min_confidence=0.0)
        accepted = [d for d in candidates if d.confidence >= self.min_confidence]
        if accepted:
            return max(accepted, key=lambda d: d.area * d.confidence)
        threshold = f"{self.min_confidence:.2f}"
        if not candidates:
            raise NoFaceError(f"no face found (no candidate at confidence >= {min(0.5, self.min_confidence):.2f})")
        raise NoFaceError(f"no face found (best confidence {candidates[0].confidence:.2f} < {threshold})")

    def crop(self, img: np.ndarray, detection: Detection, size: int) -> np.ndarray:
        """Aligned square crop of one face.

        Alignment: the image is rotated about the box centre by the angle of the line from the left
        to the right eye landmark, so the eyes end up level (in-plane roll removed; no scaling to
        fixed landmark positions). The crop is the square of side ``max(box w, box h) * (1 + margin)``
        centred on the box centre, in the rotated frame. Parts outside the image are zero (black).
        The crop is cut at full resolution and then area-resized to ``size``.

        img: uint8, shape (H, W, 3). size: output side in pixels.
        Returns: uint8, shape (size, size, 3).
        """
        x1, y1, x2, y2 = detection.box
        centre = ((x1 + x2) / 2.0, (y1 + y2) / 2.0)
        side = max(x2 - x1, y2 - y1) * (1.0 + self.margin)
        eyes = detection.landmarks[:2]
        left, right = (eyes[0], eyes[1]) if eyes[0][0] <= eyes[1][0] else (eyes[1], eyes[0])
        angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
        out = max(int(size), int(round(side)))
        matrix = cv2.getRotationMatrix2D(centre, angle, out / side)
        matrix[:, 2] += (out / 2.0 - centre[0], out / 2.0 - centre[1])
        patch = cv2.warpAffine(np.ascontiguousarray(img), matrix, (out, out), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return resize_face(patch, size)
