"""Verification metrics: hand-computed cases, scikit-learn cross-checks, properties, bad input."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from benchmark.evaluation.verification import (
    cosine_scores,
    eer,
    kfold_accuracy,
    roc_auc,
    roc_points,
    tar_at_far,
    verification_report,
)

# Genuine 0.9, 0.8, 0.4; impostor 0.7, 0.3, 0.2. By hand: 8 of 9 (genuine, impostor) pairs are
# ordered correctly -> AUC 8/9; at threshold 0.7, FAR = FRR = 1/3 -> EER 1/3.
HAND_SCORES = np.array([0.9, 0.7, 0.8, 0.3, 0.4, 0.2])
HAND_LABELS = np.array([1, 0, 1, 0, 1, 0])


def random_pairs(seed=0, n=400):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = rng.normal(labels * 1.2, 1.0)
    return scores, labels


def test_cosine_scores_hand_computed():
    # Prepare
    embeddings = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [0.0, 0.0], [-2.0, 0.0]])
    pairs = np.array([[0, 1], [0, 2], [1, 1], [0, 4]])
    # Execute
    scores = cosine_scores(embeddings, pairs)
    # Assert: the unused zero row 3 is allowed
    np.testing.assert_allclose(scores, [0.0, 1 / np.sqrt(2), 1.0, -1.0])


def test_cosine_scores_rejects_zero_vector_and_bad_indices():
    embeddings = np.array([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"rows \[1\] are zero"):
        cosine_scores(embeddings, np.array([[0, 1]]))
    with pytest.raises(ValueError, match="must index rows 0..1"):
        cosine_scores(embeddings, np.array([[0, 2]]))
    with pytest.raises(ValueError, match=r"integer array of shape \(P, 2\)"):
        cosine_scores(embeddings, np.array([[0.0, 1.0]]))


def test_roc_points_auc_eer_tar_hand_computed():
    # Execute
    far, tar, thresholds = roc_points(HAND_SCORES, HAND_LABELS)
    # Assert
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.8, 0.7, 0.4, 0.3, 0.2])
    np.testing.assert_allclose(far, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tar, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert roc_auc(HAND_SCORES, HAND_LABELS) == pytest.approx(8 / 9)
    assert eer(HAND_SCORES, HAND_LABELS) == pytest.approx(1 / 3)
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 1e-2) == pytest.approx(2 / 3)
    assert tar_at_far(HAND_SCORES, HAND_LABELS, 0.5) == pytest.approx(1.0)


def test_eer_interpolates_across_a_tied_segment():
    # Prepare: genuine 0.9, 0.5; impostor 0.5, 0.1. ROC (0,0) (0,.5) (.5,1) (1,1): the tie makes a
    # diagonal segment from (0, .5) to (.5, 1) that crosses FAR = 1 - TAR at FAR = .25, TAR = .75.
    scores, labels = np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0])
    # Execute / Assert
    assert eer(scores, labels) == pytest.approx(0.25)
    assert roc_auc(scores, labels) == pytest.approx(3.5 / 4)


@pytest.mark.parametrize("decimals", [None, 1])
def test_roc_matches_sklearn_on_random_data(decimals):
    # Prepare: continuous scores, and rounded scores with many ties
    scores, labels = random_pairs()
    if decimals is not None:
        scores = np.round(scores, decimals)
    # Execute
    far, tar, thresholds = roc_points(scores, labels)
    fpr, tpr, sk_thresholds = roc_curve(labels, scores, drop_intermediate=False)
    # Assert
    np.testing.assert_allclose(far, fpr)
    np.testing.assert_allclose(tar, tpr)
    np.testing.assert_array_equal(thresholds, sk_thresholds)
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    for target in (1e-3, 1e-2, 0.1, 0.3):
        assert tar_at_far(scores, labels, target) == pytest.approx(tpr[fpr <= target].max())


def test_eer_equals_minimax_error_without_ties():
    # Prepare: with no tied scores the ROC is a staircase and the EER is min over thresholds of
    # max(FAR, FRR), computed here from scikit-learn's ROC.
    scores, labels = random_pairs(seed=3)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    # Execute / Assert
    assert eer(scores, labels) == pytest.approx(np.min(np.maximum(fpr, 1 - tpr)))


def test_perfect_and_reversed_scores():
    # Prepare
    labels = np.array([1, 0] * 10)
    scores = labels + np.linspace(0, 0.5, 20)
    folds = np.arange(20) % 10
    # Execute / Assert: perfectly separated
    assert kfold_accuracy(scores, labels, folds)["accuracy_mean"] == 1.0
    assert roc_auc(scores, labels) == 1.0
    assert eer(scores, labels) == 0.0
    assert tar_at_far(scores, labels, 0.0) == 1.0
    # Reversed
    assert roc_auc(-scores, labels) == 0.0
    assert eer(-scores, labels) == 1.0
    assert tar_at_far(-scores, labels, 0.5) == 0.0


def test_kfold_picks_threshold_on_other_folds_only():
    # Prepare: fold 0 is separable at 0.5; fold 1 is not. By hand:
    #  test fold 0, train fold 1 (0.1i 0.5g 0.7i 0.9g): candidates -inf .3 .6 .8 inf score 2,3,2,3,2 of 4;
    #    the smallest maximizer 0.3 accepts impostor 0.4 in fold 0 -> 3/4.
    #  test fold 1, train fold 0: threshold 0.5 (4/4) rejects nothing genuine, accepts 0.7i -> 3/4.
    # Choosing on the test fold would give fold 0 accuracy 1; choosing on all pairs (0.45) mean 7/8.
    scores = np.array([0.8, 0.4, 0.6, 0.2, 0.5, 0.7, 0.9, 0.1])
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # Execute
    result = kfold_accuracy(scores, labels, folds)
    # Assert
    assert result["thresholds"] == pytest.approx([0.3, 0.5])
    assert result["fold_accuracies"] == [0.75, 0.75]
    assert result["accuracy_mean"] == 0.75
    assert result["accuracy_std"] == 0.0


def test_kfold_std_is_population_std_and_fold_ids_are_arbitrary():
    # Prepare: fold 7 = (0.9g, 0.1i), fold 3 = (0.3g, 0.2i). Train on 7 -> threshold 0.5, fold 3
    # scores 1/2; train on 3 -> 0.25, fold 7 scores 2/2. Ordered by fold id: 3 then 7.
    scores = np.array([0.9, 0.1, 0.3, 0.2])
    labels = np.array([1, 0, 1, 0])
    folds = np.array([7, 7, 3, 3])
    # Execute
    result = kfold_accuracy(scores, labels, folds)
    # Assert: ddof=0 gives 0.25 (ddof=1 would give 0.354)
    assert result["fold_accuracies"] == [0.5, 1.0]
    assert result["thresholds"] == pytest.approx([0.5, 0.25])
    assert result["accuracy_mean"] == 0.75
    assert result["accuracy_std"] == pytest.approx(0.25)


def test_verification_report_keys_values_and_json():
    # Prepare
    scores, labels = random_pairs(seed=1, n=600)
    folds = np.arange(600) % 10
    # Execute
    report = verification_report(scores, labels, folds)
    # Assert
    assert set(report) == {"accuracy_mean", "accuracy_std", "accuracy_ci", "auc", "eer", "threshold", "fold_accuracies",
                           "pairs"} | {f"tar_at_far_{f}{end}" for f in ("1e-2", "1e-3") for end in ("", "_ci", "_reliable")}
    json.dumps(report, allow_nan=False)
    folded = kfold_accuracy(scores, labels, folds)
    assert report["threshold"] == pytest.approx(np.median(folded["thresholds"]))
    assert report["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert report["tar_at_far_1e-2"] == tar_at_far(scores, labels, 1e-2)
    assert report["pairs"] == 600 and len(report["fold_accuracies"]) == 10
    assert 0.6 < report["accuracy_mean"] < 0.9


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        ([0.1, 0.2, 0.3], [1, 0], "equal length"),
        ([0.1, 0.2], [1, 2], r"1 \(genuine\) or 0 \(impostor\), got \[2\]"),
        ([0.1, 0.2], [1, 1], "need both genuine"),
        ([0.1, np.nan], [1, 0], "must not be NaN"),
    ],
)
def test_bad_scores_or_labels_raise(scores, labels, message):
    for metric in (roc_auc, eer, lambda s, y: kfold_accuracy(s, y, np.array([0, 1]))):
        with pytest.raises(ValueError, match=message):
            metric(np.array(scores), np.array(labels))


def test_bad_folds_and_far_raise():
    scores, labels = np.array([0.9, 0.1, 0.8, 0.2]), np.array([1, 0, 1, 0])
    with pytest.raises(ValueError, match="at least 2 distinct ids"):
        kfold_accuracy(scores, labels, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="folds must be integer fold ids of shape"):
        kfold_accuracy(scores, labels, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"far must be in \[0, 1\]"):
        tar_at_far(scores, labels, 1.5)
