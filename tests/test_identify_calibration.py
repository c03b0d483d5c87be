"""The quality gate calibrated on videos with known spoiled frames (benchmark/identify/calibration.py)."""

import numpy as np
import pytest

from benchmark.identify.calibration import calibrate, youden_threshold
from benchmark.identify.quality import FrameQuality, failed_checks
from benchmark.identify.settings import QualityConfig


def test_youden_threshold_separates_clean_from_spoiled_values():
    assert youden_threshold([0.6, 0.7, 0.8], [0.1, 0.2, 0.3], ">=") == (0.6, 1.0)
    assert youden_threshold([0.1, 0.2], [0.5, 0.9], "<=") == (0.2, 1.0)
    assert youden_threshold([0.2, 0.6, 0.7, 0.8], [0.1, 0.3, 0.65], ">=") == (0.7, 0.5)
    assert youden_threshold([0.2, 0.6], [0.1, 0.4], ">=") == (0.2, 0.5)  # 0.2 and 0.6 tie at J = 1/2: the looser wins


def test_shares_are_of_every_frame_when_other_checks_already_rejected_some():
    # 4 clean and 4 spoiled frames, of which other checks passed 3 clean and 1 spoiled (given here)
    assert youden_threshold([0.5, 0.6, 0.9], [0.2], ">=", 4, 4) == (0.5, pytest.approx(0.75))
    assert youden_threshold([0.5, 0.6, 0.9], [], ">=", 4, 4) == (-np.inf, pytest.approx(0.75))  # nothing left to reject


def test_a_measurement_that_does_not_separate_passes_every_frame():
    assert youden_threshold([0.5, 0.5], [0.5, 0.5], ">=") == (-np.inf, 0.0)
    assert youden_threshold([0.1, 0.2], [0.8, 0.9], ">=") == (-np.inf, 0.0)  # spoiled frames score higher: opened
    assert youden_threshold([0.8, 0.9], [0.1, 0.2], "<=") == (np.inf, 0.0)
    with pytest.raises(ValueError, match="need clean and spoiled frames"):
        youden_threshold([], [0.1], ">=")
    with pytest.raises(ValueError, match="need must be"):
        youden_threshold([0.1], [0.2], ">")


def frame(index, sharpness, brightness, frontalness=0.9):
    return FrameQuality(index, 0.99, 0.5, sharpness, brightness, 0.0, frontalness, None, 0.5)


def test_calibrate_sets_the_gate_jointly_and_reports_the_pass_rates():
    # video 0: frames 0-1 clean, frame 2 blurred, frame 3 dark; video 1: frame 0 clean, frame 1 blurred
    videos = [[frame(0, 0.8, 0.5), frame(1, 0.7, 0.6), frame(2, 0.1, 0.5), frame(3, 0.75, 0.05)],
              [frame(0, 0.9, 0.4), frame(1, 0.2, 0.45)]]
    spoiled = np.array([[False, False, True, True], [False, True, False, False]])
    cfg, report = calibrate(videos, spoiled, QualityConfig(min_sharpness=0.15, min_brightness=0.01))
    assert cfg.min_sharpness == 0.7 and cfg.min_brightness == pytest.approx(0.4)
    assert report["thresholds"]["min_sharpness"] == {"value": 0.7, "params_value": 0.15} and report["sweeps"] == 2
    # measurements equal on clean and spoiled frames (confidence, face size, clipping, frontalness) are opened
    assert (cfg.min_confidence, cfg.min_face_size, cfg.max_clipped, cfg.min_frontalness) == (0.0, 0.0, 1.0, 0.0)
    assert cfg.max_brightness == 1.0  # no frame is too bright: opened, not set to the brightest one seen
    assert cfg.min_symmetry == QualityConfig().min_symmetry and "min_symmetry" not in report["thresholds"]
    assert report["calibrated_clean_pass_rate"] == 1.0 and report["calibrated_spoiled_pass_rate"] == 0.0
    assert report["params_spoiled_pass_rate"] == pytest.approx(2 / 3)  # the loose thresholds let a blur through
    assert failed_checks(videos[1][1], cfg) == ["sharpness=0.20 < 0.70"]


def test_calibrate_refuses_frames_that_are_all_clean():
    with pytest.raises(ValueError, match="some clean and some spoiled"):
        calibrate([[frame(0, 0.8, 0.5)]], np.array([[False]]), QualityConfig())


def test_a_check_that_rejects_no_frame_the_others_let_through_stays_open():
    # the spoiled frames are both blurred and dark: the sharpness check alone rejects them
    videos = [[frame(0, 0.8, 0.5), frame(1, 0.1, 0.05)], [frame(0, 0.7, 0.6), frame(1, 0.2, 0.1)]]
    cfg, report = calibrate(videos, np.array([[False, True], [False, True]]), QualityConfig())
    assert cfg.min_sharpness == 0.7 and cfg.min_brightness == 0.0
    assert report["calibrated_clean_pass_rate"] == 1.0 and report["calibrated_spoiled_pass_rate"] == 0.0
