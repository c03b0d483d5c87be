"""Privacy metrics: PSNR/SSIM against hand-checked cases, re-identification logic, the figure, the config."""

import math

import numpy as np
import pytest

from benchmark.config import build
from benchmark.errors import ConfigError
from benchmark.privacy.figures import reconstruction_figure
from benchmark.privacy.metrics import identity_templates, match_faces, matched_originals, psnr, reidentification, ssim
from benchmark.privacy.settings import PrivacyConfig


def _images(n: int = 2, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, size, size))


def test_identical_images_give_infinite_psnr_and_ssim_one():
    # Prepare
    x = _images()
    # Execute
    p, s = psnr(x, x), ssim(x, x)
    # Assert
    assert np.all(np.isinf(p)) and np.allclose(s, 1.0)


def test_psnr_of_a_constant_offset_is_ten_log10_of_one_over_its_square():
    # Prepare: every pixel off by 0.1 -> MSE 0.01 -> 20 dB; the second image off by 0.01 -> 40 dB
    x = np.full((2, 3, 8, 8), 0.5)
    y = x + np.array([0.1, 0.01])[:, None, None, None]
    # Execute
    p = psnr(x, y)
    # Assert
    assert p == pytest.approx([20.0, 40.0])


def test_ssim_falls_with_noise_and_matches_hand_formula_on_constant_images():
    # Prepare: constant images a, b: SSIM = (2ab + C1) / (a^2 + b^2 + C1) (no variance), C1 = (0.01)^2
    a, b = np.full((1, 3, 8, 8), 0.5), np.full((1, 3, 8, 8), 0.3)
    x = _images(1)
    noisy = np.clip(x + np.random.default_rng(1).normal(0, 0.2, x.shape), 0, 1)
    # Execute
    constant = ssim(a, b)[0]
    clean, dirty = ssim(x, np.clip(x + 0.01, 0, 1))[0], ssim(x, noisy)[0]
    # Assert
    c1 = 0.01**2
    assert constant == pytest.approx((2 * 0.5 * 0.3 + c1) / (0.5**2 + 0.3**2 + c1), rel=1e-6)
    assert 1.0 > clean > 0.95 > 0.9 > dirty


@pytest.mark.parametrize(
    "a, b",
    [
        (np.zeros((0, 3, 8, 8)), np.zeros((0, 3, 8, 8))),
        (np.zeros((1, 3, 8, 8)), np.zeros((1, 3, 8, 9))),
        (np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 3))),
        (np.zeros((1, 3, 8, 8)), np.full((1, 3, 8, 8), 2.0)),
        (np.zeros((1, 3, 8, 8)), np.full((1, 3, 8, 8), np.nan)),
    ],
)
def test_image_metrics_reject_bad_batches(a, b):
    with pytest.raises(ValueError):
        psnr(a, b)
    with pytest.raises(ValueError):
        ssim(a, b)


def test_templates_are_normalized_means_per_identity():
    # Prepare
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    labels = np.array([7, 7, 4])
    # Execute
    templates, identities = identity_templates(emb, labels)
    # Assert
    assert identities.tolist() == [4, 7]
    assert np.allclose(templates, [[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)]])


def test_reidentification_needs_rank_one_and_the_threshold():
    # Prepare: identities 1 (x axis) and 2 (y axis); probes of identity 1 at angles 10, 60 and 30 degrees
    templates, identities = np.eye(2), np.array([1, 2])
    angles = np.radians([10.0, 60.0, 30.0])
    probes = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    # Execute
    out = reidentification(probes, np.array([1, 1, 1]), templates, identities, threshold=0.9)
    # Assert: 10 deg: first and cos 0.985 >= 0.9; 60 deg: identity 2 ranks first; 30 deg: first, cos 0.866 < 0.9
    assert out["rank1"].tolist() == [True, False, True]
    assert out["accepted"].tolist() == [True, False, False]
    assert out["reidentified"].tolist() == [True, False, False]
    assert out["predicted"].tolist() == [1, 2, 1]
    assert out["score"] == pytest.approx(np.cos(angles))


def test_a_tie_with_another_identity_is_not_rank_one():
    out = reidentification(np.array([[1.0, 1.0]]), np.array([1]), np.eye(2), np.array([1, 2]), threshold=0.0)
    assert not out["rank1"][0] and not out["reidentified"][0]


def test_reidentification_rejects_an_identity_without_template():
    with pytest.raises(ValueError, match="no template"):
        reidentification(np.array([[1.0, 0.0]]), np.array([3]), np.eye(2), np.array([1, 2]), threshold=0.5)


def test_figure_shows_each_original_above_its_reconstruction_with_its_numbers():
    # Prepare
    x = _images(3)
    # Execute
    fig = reconstruction_figure(x, x[::-1], [20.0, 9.5, 31.25], [0.5, 0.1, 0.9], [True, False, True])
    # Assert
    axes = fig.get_axes()
    assert len(axes) == 6
    titles = [ax.get_title() for ax in axes]
    assert "9.5 dB, SSIM 0.10\nnot re-identified" in titles and "31.2 dB, SSIM 0.90\nre-identified" in titles
    with pytest.raises(ValueError):
        reconstruction_figure(x, x, [1.0], [1.0], [True])


def test_privacy_config_is_validated_by_config_build():
    # Execute
    cfg = build(PrivacyConfig, {"batch_size": 4, "iterations": 50, "threat": "known_head"}, "federated.privacy")
    # Assert
    assert (cfg.batch_size, cfg.iterations, cfg.threat) == (4, 50, "known_head")
    with pytest.raises(ConfigError, match="federated.privacy.batch_size"):
        build(PrivacyConfig, {"batch_size": 1}, "federated.privacy")  # BatchNorm needs 2 faces a step
    with pytest.raises(ConfigError, match="federated.privacy.objective"):
        build(PrivacyConfig, {"objective": "ssim"}, "federated.privacy")


def test_each_reconstruction_is_paired_with_the_original_it_shows_mirrored_or_not():
    # Prepare: three distinct images; the reconstructions are them shuffled, one mirrored left-right, with noise
    rng = np.random.default_rng(0)
    originals = rng.random((3, 3, 8, 8))
    shown = originals[[2, 0, 1]].copy()
    shown[1] = shown[1][..., ::-1]
    noisy = np.clip(shown + rng.normal(0, 0.02, shown.shape), 0, 1)
    # Execute
    order, flipped = match_faces(originals, noisy)
    # Assert
    assert order.tolist() == [2, 0, 1] and flipped.tolist() == [False, True, False]
    assert np.allclose(matched_originals(originals, order, flipped), shown)
    assert psnr(matched_originals(originals, order, flipped), noisy).min() > 30
