"""MTCNN wrapper: lazy construction, alignment geometry, and detection on real photos."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmark.data.detect import Detection, FaceDetector, NoFaceError
from benchmark.data.images import read_image

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def _eye_angle(detection: Detection) -> float:
    """Roll of the eye line in degrees (0 = level)."""
    (lx, ly), (rx, ry) = detection.landmarks[:2]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def _blob_centres(img: np.ndarray) -> np.ndarray:
    """(x, y) centroids of the bright blobs in a (H, W, 3) image, sorted by x."""
    count, _, stats, centres = cv2.connectedComponentsWithStats((img[:, :, 0] > 128).astype(np.uint8))
    return centres[1:][np.argsort(centres[1:, 0])]


def test_import_and_construction_load_no_network():
    code = ("import sys, benchmark.data.detect as d; d.FaceDetector(); "
            "print('facenet_pytorch' in sys.modules, 'torch' in sys.modules)")

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("kw,match", [({"min_confidence": 1.5}, "min_confidence"), ({"margin": -0.1}, "margin"),
                                      ({"max_side": 10}, "max_side")])
def test_bad_settings_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        FaceDetector(**kw)


def test_crop_levels_the_eyes_and_centres_the_box():
    img = np.zeros((200, 200, 3), dtype=np.uint8)
    left, right = (80.0, 90.0), (120.0, 90.0 + 40.0 * math.tan(math.radians(20)))
    for x, y in (left, right):
        cv2.circle(img, (round(x), round(y)), 3, (255, 255, 255), -1)
    landmarks = np.array([left, right, (100, 110), (85, 125), (115, 125)], dtype=float)
    detection = Detection((60.0, 60.0, 140.0, 140.0), 0.99, landmarks)

    crop = FaceDetector(margin=0.2).crop(img, detection, 96)

    centres = _blob_centres(crop)
    # Expected: rotate about the box centre (100, 100) so the eye line is level, then move the
    # box centre to the crop centre (48, 48); the scale is 1 (side 80 * 1.2 = 96 px -> 96 px).
    a = math.radians(20)
    rotation = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    expected = (np.array([left, right]) - 100.0) @ rotation.T + 48.0
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    assert len(centres) == 2
    assert abs(expected[0, 1] - expected[1, 1]) < 1e-9  # the expectation itself is level
    np.testing.assert_allclose(centres, expected, atol=0.75)


def test_crop_pads_with_black_outside_the_image():
    img = np.full((100, 100, 3), 255, dtype=np.uint8)
    landmarks = np.array([(5, 10), (25, 10), (15, 18), (8, 25), (22, 25)], dtype=float)
    detection = Detection((-10.0, -10.0, 30.0, 30.0), 0.95, landmarks)

    crop = FaceDetector(margin=0.0).crop(img, detection, 40)

    assert (crop[:8, :8] == 0).all()  # above-left of the image
    assert (crop[20:, 20:] == 255).all()  # inside the image


def test_blank_image_has_no_face():
    detector = FaceDetector()
    blank = np.full((120, 120, 3), 128, dtype=np.uint8)

    found = detector.detect(blank)
    with pytest.raises(NoFaceError, match=r"no face found \(no candidate"):
        detector.main_face(blank)

    assert found == []


def _photo(name: str) -> np.ndarray:
    path = REAL / "photos" / name
    if not path.is_file():
        pytest.skip(f"real data not found: {path}")
    return read_image(path)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.mark.real_data
def test_detections_are_sorted_deterministic_and_in_full_resolution_coordinates(detector):
    img = _photo("barack_obama/obama.jpg")  # 910x1137: shrunk to 640 for detection

    first = detector.detect(img, min_confidence=0.0)
    again = detector.detect(img, min_confidence=0.0)

    assert len(first) >= 1
    assert [d.confidence for d in first] == sorted((d.confidence for d in first), reverse=True)
    assert [d.box for d in first] == [d.box for d in again]
    main = detector.main_face(img)
    x1, y1, x2, y2 = main.box
    assert main.confidence > 0.99 and x2 - x1 > 200  # a 280 px face in the full-size photo
    eyes_x = main.landmarks[:2, 0]
    assert x1 < eyes_x.min() and eyes_x.max() < x2 and main.landmarks.shape == (5, 2)


@pytest.mark.real_data
def test_rotated_face_comes_out_level_and_redetectable(detector):
    img = _photo("barack_obama/obama_small.jpg")
    h, w = img.shape[:2]
    rotated = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0), (w, h))

    face = detector.main_face(rotated)
    crop = detector.crop(rotated, face, 112)
    again = detector.detect(crop)

    assert abs(_eye_angle(face)) > 15  # the detector sees the roll...
    assert len(again) >= 1 and again[0].confidence > 0.95
    assert abs(_eye_angle(again[0])) < 5  # ...and the crop removes it
