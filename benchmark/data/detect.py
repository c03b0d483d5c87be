"""Face detection and aligned cropping with MTCNN (facenet-pytorch).

MTCNN (Zhang et al. 2016, "Joint Face Detection and Alignment using Multitask Cascaded
Convolutional Networks") ships its weights inside the facenet-pytorch package, so nothing is
downloaded at run time. It returns a box, a confidence and five landmarks per face
(left eye, right eye, nose, left and right mouth corner, in image coordinates).

The network is built on first use (importing this module loads neither torch nor the weights),
runs on the CPU and is deterministic: the same image gives the same detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from benchmark.data.align import Geometry, cut
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
    """MTCNN wrapper: detect faces, pick the main one, cut its crop (:mod:`benchmark.data.align`).

    min_confidence: faces below this probability are not returned by ``detect`` (default 0.9).
    max_side:       images whose longer side exceeds this many pixels are shrunk (area averaging)
                    to it before detection and the boxes/landmarks are scaled back, so a 2204 px
                    photo costs about as much as a 640 px one; faces smaller than about
                    ``min_face_size * longer_side / max_side`` pixels are then missed (default 640).
    min_face_size:  MTCNN's smallest face in pixels of the (shrunk) detection image (default 20).
    num_threads:    torch threads while MTCNN runs; the previous setting is restored afterwards
                    (default 1: MTCNN's small convolutions gain little from threads, and on a
                    2-core machine with the other core busy, 2 threads ran 10x slower than 1).
    """

    def __init__(self, min_confidence: float = 0.9, max_side: int = 640,
                 min_face_size: int = 20, num_threads: int = 1) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if max_side < 48 or min_face_size < 12 or num_threads < 1:
            raise ValueError(f"max_side must be >= 48, min_face_size >= 12 and num_threads >= 1, "
                             f"got {max_side}, {min_face_size}, {num_threads}")
        self.min_confidence = float(min_confidence)
        self.max_side = int(max_side)
        self.min_face_size = int(min_face_size)
        self.num_threads = int(num_threads)
        self._net = None

    def __getstate__(self) -> dict:
        """A copy for another process (a detection worker) builds its own MTCNN on first use."""
        return {**self.__dict__, "_net": None}

    @property
    def settings(self) -> str:
        """What decides the detections of an image besides its bytes (a detection cache's key part);
        ``min_confidence`` is not in it: the candidates are kept and the floor applied afterwards."""
        return f"mtcnn facenet-pytorch 2.6.0 max_side={self.max_side} min_face_size={self.min_face_size}"

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
        """The face a data set labels, among those >= ``min_confidence`` (see :func:`pick_main`).

        Raises NoFaceError("no face found (best confidence 0.42 < 0.90)") when there is none.
        """
        return pick_main(self.detect(img, min_confidence=0.0), img.shape[:2], self.min_confidence)

    def crop(self, img: np.ndarray, detection: Detection, size: int | Geometry) -> np.ndarray:
        """The crop of one face: ``size`` pixels on the ArcFace template, or any :class:`Geometry`.

        img: uint8, shape (H, W, 3). Returns uint8 (size, size, 3) (see :func:`benchmark.data.align.cut`).
        """
        geometry = size if isinstance(size, Geometry) else Geometry(int(size))
        return cut(img, np.asarray(detection.box), detection.landmarks, geometry)


def pick_main(candidates: list[Detection], shape: tuple[int, int], min_confidence: float) -> Detection:
    """FaceNet's main-face rule (``align_dataset_mtcnn``): among the detections at or above ``min_confidence``,
    the largest box area minus twice the squared distance of its centre from the image centre. The most
    confident face is often a background face in a multi-face photo (about 5 points of LFW lost that way).

    candidates: every detection (any confidence); shape: (H, W) of the image they were found in.
    Raises NoFaceError naming the best confidence seen when none is accepted.
    """
    accepted = [d for d in candidates if d.confidence >= min_confidence]
    if accepted:
        h, w = shape

        def rank(d: Detection) -> float:
            x1, y1, x2, y2 = d.box
            offset = ((x1 + x2) / 2 - w / 2) ** 2 + ((y1 + y2) / 2 - h / 2) ** 2
            return d.area - 2.0 * offset

        return max(accepted, key=rank)
    if not candidates:
        raise NoFaceError(f"no face found (no candidate at confidence >= {min(0.5, min_confidence):.2f})")
    best = max(d.confidence for d in candidates)
    raise NoFaceError(f"no face found (best confidence {best:.2f} < {min_confidence:.2f})")
