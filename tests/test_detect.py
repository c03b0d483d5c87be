"""MTCNN wrapper: lazy construction, alignment geometry, and detection on real photos."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmark.data.align import ARCFACE_TEMPLATE_112, Geometry, template
from benchmark.data.detect import Detection, FaceDetector, NoFaceError, pick_main
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


@pytest.mark.parametrize("kw,match", [({"min_confidence": 1.5}, "min_confidence"),
                                      ({"min_face_size": 5}, "min_face_size"), ({"max_side": 10}, "max_side"),
                                      ({"num_threads": 0}, "num_threads")])
def test_bad_settings_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        FaceDetector(**kw)


@pytest.mark.parametrize("kw,match", [({"size": 4}, "size must be an integer >= 8"),
                                      ({"size": 64, "policy": "dlib"}, "policy must be one of arcface, box"),
                                      ({"size": 64, "policy": "box", "margin": 64}, r"margin must be in \[0, size\)")])
def test_bad_geometry_is_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        Geometry(**kw)


def _similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """(2, 3) matrix of x -> scale * R(angle) x + shift."""
    a = math.radians(angle_deg)
    rotation = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.hstack([rotation, np.asarray(shift, dtype=float)[:, None]])


@pytest.mark.parametrize("size", [112, 64])
def test_crop_puts_the_landmarks_on_the_arcface_template(size):
    # Prepare: a face whose landmarks are the template (at 112 px) rolled 20 degrees, scaled 1.5x and moved,
    # drawn as five bright dots on black; the detection box is deliberately off (alignment must not use it).
    matrix = _similarity(20.0, 1.5, (60.0, 25.0))
    landmarks = ARCFACE_TEMPLATE_112 @ matrix[:, :2].T + matrix[:, 2]
    img = np.zeros((300, 300, 3), dtype=np.uint8)
    for x, y in landmarks:
        cv2.circle(img, (round(x), round(y)), 4, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    detection = Detection((0.0, 0.0, 300.0, 300.0), 0.99, landmarks)

    # Execute
    crop = FaceDetector().crop(img, detection, size)

    # Assert: every dot lands on its template point (within a pixel), and nothing else is bright.
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    centres = _blob_centres(crop)
    expected = template(size)
    assert len(centres) == 5
    np.testing.assert_allclose(centres, expected[np.argsort(expected[:, 0])], atol=1.0)


def test_crop_pads_with_black_outside_the_image():
    # Prepare: a white image whose face sits in its top-left corner: the template at 40 px moved 12 px left
    # and 15 px up, so crop pixel (x, y) is image pixel (x - 12, y - 15).
    img = np.full((100, 100, 3), 255, dtype=np.uint8)
    detection = Detection((-10.0, -10.0, 30.0, 30.0), 0.95, template(40) - (12.0, 15.0))

    # Execute
    crop = FaceDetector().crop(img, detection, 40)

    # Assert
    assert (crop[:14] == 0).all() and (crop[:, :11] == 0).all()  # above and left of the image
    assert (crop[16:, 13:] == 255).all()  # inside the image


def test_box_geometry_grows_the_box_by_the_margin_in_output_pixels():
    # Prepare: box (20, 20)-(60, 60), 40 px; an 8 px margin of a 40 px crop is 8 * 40 / (40 - 8) = 10 image
    # pixels, so the crop covers (15, 15)-(65, 65): a 5 px red frame around green, black outside.
    img = np.zeros((100, 100, 3), dtype=np.uint8)
    img[15:65, 15:65] = (255, 0, 0)
    img[20:60, 20:60] = (0, 255, 0)
    detection = Detection((20.0, 20.0, 60.0, 60.0), 0.99, np.zeros((5, 2)))

    # Execute
    crop = FaceDetector().crop(img, detection, Geometry(40, "box", margin=8))

    # Assert: the frame shrinks 50 -> 40 px (5 px -> 4 px); no black (outside the margin) reaches the crop.
    red, green = np.array([255, 0, 0]), np.array([0, 255, 0])
    assert crop.shape == (40, 40, 3)
    for edge in (crop[:3], crop[-3:], crop[:, :3], crop[:, -3:]):
        assert (edge == red).all()
    assert (crop[5:35, 5:35] == green).all()


def test_pick_main_prefers_a_big_centred_face_to_a_confident_small_or_off_centre_one():
    # Prepare: a 400x400 photo. The centred 100 px face (0.95) scores 100^2 = 10,000; a bigger 120 px face at
    # (330, 200) scores 14,400 - 2 * 130^2 < 0; a small corner face is the most confident; a huge centred
    # candidate is below the confidence floor.
    centred = Detection((150.0, 150.0, 250.0, 250.0), 0.95, np.zeros((5, 2)))
    off_centre = Detection((270.0, 140.0, 390.0, 260.0), 0.98, np.zeros((5, 2)))
    corner = Detection((0.0, 0.0, 40.0, 40.0), 0.999, np.zeros((5, 2)))
    weak = Detection((20.0, 20.0, 380.0, 380.0), 0.6, np.zeros((5, 2)))

    # Execute
    main = pick_main([corner, off_centre, weak, centred], (400, 400), 0.9)

    # Assert
    assert main is centred
    with pytest.raises(NoFaceError, match=r"best confidence 0\.60 < 0\.90"):
        pick_main([weak], (400, 400), 0.9)


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
