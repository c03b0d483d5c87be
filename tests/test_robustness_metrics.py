"""Robustness metrics against hand-computed cases."""

import math

import numpy as np
import pytest

from benchmark.evaluation.robustness import (
    attack_success_rate,
    bracket,
    budget_rates,
    median_min_perturbation,
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


def test_budget_rates_give_each_rate_with_its_wilson_interval_and_count():
    # Execute
    rates = budget_rates(BEFORE, AFTER, IS_SAME, THR)
    # Assert: correct after: g 0.55 (accepted), i 0.3 (rejected) -> robust accuracy 2 of 7; the success rates
    # as above; Wilson's interval for 2 of 7 (by hand: centre (p + z^2/2n) / (1 + z^2/n), z = 1.959964)
    assert rates["robust_accuracy"] == pytest.approx(2 / 7) and rates["robust_accuracy_n"] == 7
    assert rates["dodging_asr"] == pytest.approx(2 / 3) and rates["dodging_asr_n"] == 3
    assert rates["impersonation_asr"] == pytest.approx(1 / 2) and rates["impersonation_asr_n"] == 2
    z, n, p = 1.959964, 7, 2 / 7
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert rates["robust_accuracy_ci"] == pytest.approx([centre - half, centre + half], abs=1e-5)
    empty = budget_rates(np.array([0.1]), np.array([0.9]), np.array([True]), THR)
    assert math.isnan(empty["dodging_asr"]) and empty["dodging_asr_ci"] is None and empty["dodging_asr_n"] == 0


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
