"""Identification metrics: hand-computed cases, scikit-learn cross-check, properties, bad input."""

import json

import numpy as np
import pytest
from sklearn.metrics import top_k_accuracy_score

from benchmark.evaluation.identification import (
    dir_at_fpir,
    identification_report,
    rank_k_accuracy,
    similarity_matrix,
)

# Gallery: identity 10 twice, 20 and 30 once. Probes 0-3 are mated, 4-7 non-mated.
GALLERY = np.array([10, 10, 20, 30])
PROBES = np.array([10, 20, 30, 10, 40, 50, 60, 70])
SIM = np.array([
    [0.0, 0.9, 0.5, 0.1],   # 10: best image 0.9 -> rank 1 (first image or mean 0.45 would rank 2)
    [0.3, 0.1, 0.65, 0.4],  # 20: 0.65 -> rank 1
    [0.1, 0.4, 0.3, 0.5],   # 30: 0.5 -> rank 1
    [0.2, 0.1, 0.6, 0.15],  # 10: 0.2 behind 20's 0.6 -> rank 2
    [0.7, 0.1, 0.2, 0.3],   # non-mated top 0.7
    [0.1, 0.3, 0.2, 0.0],   # non-mated top 0.3
    [0.5, 0.4, 0.1, 0.2],   # non-mated top 0.5
    [0.2, 0.1, 0.0, 0.1],   # non-mated top 0.2
])
MATED = slice(0, 4)


def test_similarity_matrix_hand_computed():
    # Prepare
    probes = np.array([[1.0, 0.0], [1.0, 1.0]])
    gallery = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    # Execute
    sim = similarity_matrix(probes, gallery)
    # Assert
    r = 1 / np.sqrt(2)
    np.testing.assert_allclose(sim, [[1.0, 0.0, -1.0], [r, r, -r]])


def test_rank_k_hand_computed_uses_best_image_per_identity():
    # Execute / Assert
    assert rank_k_accuracy(SIM[MATED], PROBES[MATED], GALLERY, k=1) == 0.75
    assert rank_k_accuracy(SIM[MATED], PROBES[MATED], GALLERY, k=2) == 1.0
    assert rank_k_accuracy(SIM[MATED], PROBES[MATED], GALLERY, k=5) == 1.0


def test_rank_k_ties_count_against_the_probe():
    # Prepare: the true identity 1 ties with identity 2
    sim, probes, gallery = np.array([[0.5, 0.5]]), np.array([1]), np.array([1, 2])
    # Execute / Assert
    assert rank_k_accuracy(sim, probes, gallery, k=1) == 0.0
    assert rank_k_accuracy(sim, probes, gallery, k=2) == 1.0


def test_rank_k_matches_sklearn_top_k_and_ignores_gallery_order():
    # Prepare: one image per identity, so rank-k is scikit-learn's top-k accuracy
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(200, 30))
    probes = rng.integers(0, 30, 200)
    sim[np.arange(200), probes] += 1.0
    gallery = np.arange(30)
    perm = rng.permutation(30)
    for k in (1, 5):
        # Execute
        ours = rank_k_accuracy(sim, probes, gallery, k=k)
        # Assert
        assert ours == pytest.approx(top_k_accuracy_score(probes, sim, k=k, labels=gallery))
        assert rank_k_accuracy(sim[:, perm], probes, gallery[perm], k=k) == ours


@pytest.mark.parametrize(
    "fpir, expected_dir, achieved, threshold_above",
    [
        (0.0, 0.25, 0.0, 0.7),   # m = 0: t just above 0.7; only 0.9 passes
        (0.1, 0.25, 0.0, 0.7),   # 0.1 * 4 < 1 -> still m = 0
        (0.25, 0.5, 0.25, 0.5),  # m = 1: t just above 0.5, so the mated 0.5 is rejected
        (0.5, 0.75, 0.5, 0.3),   # m = 2: 0.9, 0.65, 0.5 pass; the rank-2 probe never counts
    ],
)
def test_dir_at_fpir_hand_computed(fpir, expected_dir, achieved, threshold_above):
    # Execute
    result = dir_at_fpir(SIM, PROBES, GALLERY, fpir)
    # Assert
    assert result["dir"] == expected_dir
    assert result["fpir"] == achieved
    assert result["threshold"] == np.nextafter(threshold_above, np.inf)
    assert (result["mated"], result["non_mated"]) == (4, 4)


def test_dir_at_fpir_one_accepts_everything():
    result = dir_at_fpir(SIM, PROBES, GALLERY, 1.0)
    assert result["threshold"] == -np.inf
    assert (result["dir"], result["fpir"]) == (0.75, 1.0)


def test_dir_at_fpir_threshold_is_tight_and_dir_matches_brute_force():
    # Prepare: one image per identity; probes 30..59 are non-mated
    rng = np.random.default_rng(1)
    gallery = np.arange(30)
    probes = rng.integers(0, 60, 300)
    sim = rng.normal(size=(300, 30))
    mated = probes < 30
    sim[np.flatnonzero(mated), probes[mated]] += 2.0
    non_mated_top = sim[~mated].max(axis=1)
    for fpir in (0.01, 0.05, 0.1, 0.3):
        # Execute
        result = dir_at_fpir(sim, probes, gallery, fpir)
        # Assert: achieved <= target, and the next lower threshold would exceed it
        t = result["threshold"]
        assert result["fpir"] == np.mean(non_mated_top >= t) <= fpir
        assert np.mean(non_mated_top >= np.nextafter(t, -np.inf)) > fpir
        top1 = sim[mated].argmax(axis=1) == probes[mated]
        assert result["dir"] == pytest.approx(np.mean(top1 & (sim[mated].max(axis=1) >= t)))


def test_identification_report_hand_computed():
    # Execute
    report = identification_report(SIM, PROBES, GALLERY, fpirs=(0.1, 0.25))
    # Assert: rank-k over the 4 mated probes only
    assert report["rank1"] == 0.75 and report["rank5"] == 1.0
    assert report["dir_at_fpir_0.1"] == 0.25 and report["dir_at_fpir_0.25"] == 0.5
    assert report["threshold_at_fpir_0.25"] == np.nextafter(0.5, np.inf)
    assert (report["mated"], report["non_mated"]) == (4, 4)
    json.dumps(report, allow_nan=False)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="every probe identity in the gallery; 4 probes"):
        rank_k_accuracy(SIM, PROBES, GALLERY)
    with pytest.raises(ValueError, match="0 non-mated"):
        dir_at_fpir(SIM[MATED], PROBES[MATED], GALLERY, 0.1)
    with pytest.raises(ValueError, match="0 mated"):
        dir_at_fpir(SIM[4:], PROBES[4:], GALLERY, 0.1)
    with pytest.raises(ValueError, match=r"fpir must be in \[0, 1\]"):
        dir_at_fpir(SIM, PROBES, GALLERY, -0.1)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        rank_k_accuracy(SIM[MATED], PROBES[MATED], GALLERY, k=0)
    with pytest.raises(ValueError, match="to match sim"):
        rank_k_accuracy(SIM, PROBES[:3], GALLERY)
    with pytest.raises(ValueError, match="sim must be finite"):
        rank_k_accuracy(np.full((1, 1), np.nan), np.array([1]), np.array([1]))
    with pytest.raises(ValueError, match="must share D"):
        similarity_matrix(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"gallery_emb rows \[1\] are zero"):
        similarity_matrix(np.ones((2, 3)), np.array([[1.0, 0, 0], [0, 0, 0]]))
