"""Robustness metrics against hand-computed cases."""

import math

import numpy as np
import pytest

from benchmark.evaluation.robustness import (
    attack_success_rate,
    bracket,
    median_min_perturbation,
    robust_accuracy,
)

THR = 0.5
# pairs:          g ok   g ok   g ok   g wrong  i ok   i ok   i wrong
IS_SAME = np.array([1, 1, 1, 1, 0, 0, 0], dtype=bool)
BEFORE = np.array([0.9, 0.8, 0.6, 0.3, 0.1, 0.4, 0.7])
AFTER = np.array([0.2, 0.55, 0.49, 0.1, 0.5, 0.3, 0.9])


def test_attack_success_rate_counts_only_pairs_correct_before():
    # Execute
    asr = attack_success_rate(BEFORE, AFTER, IS_SAME, THR)
    # Assert: dodging 2 of the 3 accepted genuine pairs fall below 0.5 (0.2, 0.49; 0.55 stays);
    # impersonation 1 of the 2 rejected impostors reaches 0.5 (0.5 >= 0.5); the wrong ones are ignored
    assert asr["dodging"] == pytest.approx(2 / 3)
    assert asr["impersonation"] == pytest.approx(1 / 2)


def test_attack_success_rate_is_nan_without_pairs_to_attack():
    asr = attack_success_rate(np.array([0.1]), np.array([0.9]), np.array([True]), THR)
    assert math.isnan(asr["dodging"]) and math.isnan(asr["impersonation"])


def test_robust_accuracy_is_the_share_of_pairs_correct_after_the_attack():
    # correct after: g 0.55 (accepted), i 0.3 (rejected) -> 2 of 7
    assert robust_accuracy(AFTER, IS_SAME, THR) == pytest.approx(2 / 7)


def test_bracket_gives_the_coarse_interval_per_pair():
    # Prepare: budgets 1, 2, 4; pair 0 broken from 1, pair 1 from 4, pair 2 never
    broken = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=bool)
    # Execute
    lo, hi = bracket(broken, np.array([1.0, 2.0, 4.0]))
    # Assert
    np.testing.assert_array_equal(lo, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(hi, [1.0, 4.0, np.inf])


def test_bracket_rejects_non_monotone_success_and_bad_budgets():
    with pytest.raises(ValueError, match="monotone"):
        bracket(np.array([[1], [0]], dtype=bool), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="positive and increasing"):
        bracket(np.array([[1], [1]], dtype=bool), np.array([2.0, 1.0]))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3.0, 1.0, 2.0], 2.0),
        ([1.0, np.inf, 2.0], 2.0),
        ([1.0, np.inf, np.inf], np.inf),
        ([1.0, 2.0, 3.0, np.inf], 2.5),
        ([1.0, 2.0, np.inf, np.inf], np.inf),
    ],
)
def test_median_min_perturbation_treats_never_broken_as_infinite(values, expected):
    assert median_min_perturbation(np.array(values)) == expected


def test_median_min_perturbation_rejects_negative_or_nan():
    with pytest.raises(ValueError, match="budgets >= 0"):
        median_min_perturbation(np.array([0.1, np.nan]))
