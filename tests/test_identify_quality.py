"""Frame quality: each measurement ranks a good frame above a spoiled one; selection and its errors."""

import math

import cv2
import numpy as np
import pytest

from benchmark import config
from benchmark.data.detect import FaceDetector
from benchmark.data.synthetic import Nuisance, identities, render_face
from benchmark.errors import ConfigError
from benchmark.identify import quality
from benchmark.identify.quality import FrameQuality, NoUsableFrameError, failed_checks, select_frame
from benchmark.identify.settings import IdentifyConfig, QualityConfig

CROPPED = QualityConfig(assume_cropped=True)


@pytest.fixture(scope="module")
def sharp() -> np.ndarray:
    """A frontal, evenly lit synthetic face, uint8 (64, 64, 3)."""
    return render_face(identities(0, 1)[0], Nuisance(), 64)


def spoiled(sharp: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "blurred": cv2.GaussianBlur(sharp, (0, 0), 2.0),
        "dark": (sharp * 0.12).astype(np.uint8),
        "cut off": np.roll(sharp, 40, axis=1),
        "turned away": render_face(identities(0, 1)[0], Nuisance(yaw=75.0), 64),
    }


def test_cropped_scores_rank_the_sharp_frame_first(sharp):
    # Prepare
    frames = np.stack([sharp, *spoiled(sharp).values()])
    # Execute
    scores = quality.score_frames(frames, CROPPED)
    # Assert
    combined = [q.combined for q in scores]
    assert int(np.argmax(combined)) == 0
    assert all(combined[0] > 3 * c for c in combined[1:])
    assert [q.index for q in scores] == list(range(len(frames)))


def test_cropped_measurements_flag_the_right_defect(sharp):
    # Prepare
    bad = spoiled(sharp)
    # Execute
    good = quality.score_cropped(sharp)
    blurred, dark, cut = (quality.score_cropped(bad[k]) for k in ("blurred", "dark", "cut off"))
    # Assert
    assert good.sharpness > 0.4 and blurred.sharpness < 0.1
    assert good.brightness > 0.3 and dark.brightness < 0.1
    assert good.symmetry > 0.9 and cut.symmetry < 0.2
    assert failed_checks(good, CROPPED) == []
    assert [f.split("=")[0] for f in failed_checks(blurred, CROPPED)] == ["sharpness"]
    assert [f.split("=")[0] for f in failed_checks(dark, CROPPED)] == ["brightness"]
    assert [f.split("=")[0] for f in failed_checks(cut, CROPPED)] == ["symmetry"]
    assert good.confidence is None and good.face_size is None and good.frontalness is None


def test_frontalness_from_landmarks_ignores_roll_and_drops_with_yaw():
    # Prepare: eyes, nose, mouth corners of a frontal face, then rolled 30 deg, then nose moved sideways
    frontal = np.array([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [30.0, 80.0], [70.0, 80.0]])
    a = math.radians(30)
    rolled = (frontal - 50) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) + 50
    turned = frontal.copy()
    turned[2, 0] = 60.0  # halfway from the centre to the right eye and mouth corner
    profile = frontal.copy()
    profile[2, 0] = 75.0  # beyond the right eye and mouth corner
    # Execute
    values = [quality.frontalness(p) for p in (frontal, rolled, turned)]
    # Assert
    np.testing.assert_allclose(values, [1.0, 1.0, 0.5], atol=1e-9)
    assert quality.frontalness(profile) == 0.0


def test_detector_mode_prefers_the_sharp_frame(sharp):
    # Prepare
    frames = np.stack([cv2.GaussianBlur(sharp, (0, 0), 2.0), sharp, (sharp * 0.12).astype(np.uint8)])
    cfg = QualityConfig()
    # Execute
    scores = quality.score_frames(frames, cfg, FaceDetector())
    chosen = select_frame(scores, cfg)
    # Assert
    assert chosen.index == 1
    assert chosen.confidence > 0.9 and chosen.frontalness > 0.8 and 0.5 < chosen.face_size <= 1.2
    assert chosen.detection is not None and chosen.symmetry is None


def test_select_frame_takes_the_best_passing_not_the_best_overall():
    # Prepare: frame 0 has the highest combined score but fails sharpness
    def frame(i, sharpness, combined):
        return FrameQuality(i, None, None, sharpness, 0.5, 0.0, None, 0.9, combined)

    scores = [frame(0, 0.1, 0.9), frame(1, 0.5, 0.3), frame(2, 0.5, 0.4), frame(3, 0.5, 0.4)]
    # Execute
    chosen = select_frame(scores, CROPPED)
    # Assert: the first of the two tied passing frames
    assert chosen.index == 2


def test_select_frame_error_lists_every_frame_and_check():
    # Prepare
    scores = [
        FrameQuality(0, 0.42, 0.05, 0.1, 0.9, 0.3, 0.2, None, 0.0),
        FrameQuality(1, 0.0, 0.0, None, None, None, None, None, 0.0),
    ]
    # Execute
    with pytest.raises(NoUsableFrameError) as err:
        select_frame(scores, QualityConfig())
    # Assert
    assert str(err.value) == (
        "no frame of 2 passes the quality checks:\n"
        "  frame 0: confidence=0.42 < 0.90, face_size=0.05 < 0.10, sharpness=0.10 < 0.25, brightness=0.90 > 0.85, "
        "clipped=0.30 > 0.25, frontalness=0.20 < 0.40\n"
        "  frame 1: no face found (confidence 0.00 < 0.90)"
    )


def test_bad_frames_input_is_rejected():
    # Execute / Assert
    with pytest.raises(ValueError, match=r"frames must be uint8 \(T, H, W, 3\)"):
        quality.score_frames(np.zeros((2, 8, 8, 3), np.float32), CROPPED)
    with pytest.raises(ValueError, match="scores is empty"):
        select_frame([], CROPPED)


def test_config_validates_keys_ranges_and_brightness_order():
    # Prepare
    raw = {"far": 0.01, "quality": {"assume_cropped": True, "min_sharpness": 0.2}}
    # Execute
    cfg = config.build(IdentifyConfig, raw, "identify")
    # Assert
    assert cfg.far == 0.01 and cfg.quality.assume_cropped and cfg.quality.min_sharpness == 0.2
    with pytest.raises(ConfigError, match=r"unknown key 'identify.quality.min_sharpnes' \(did you mean 'min_sharpness'"):
        config.build(IdentifyConfig, {"quality": {"min_sharpnes": 0.2}}, "identify")
    with pytest.raises(ConfigError, match=r"'identify.quality.min_confidence' = 1.5 is out of range"):
        config.build(IdentifyConfig, {"quality": {"min_confidence": 1.5}}, "identify")
    with pytest.raises(ConfigError, match="min_brightness.*must be below.*max_brightness"):
        config.build(IdentifyConfig, {"quality": {"min_brightness": 0.9, "max_brightness": 0.8}}, "identify")
