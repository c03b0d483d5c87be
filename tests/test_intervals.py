"""The intervals every reported rate carries, against values computed by hand, and their place in the reports."""

import math

import numpy as np
import pytest

from benchmark.evaluation.identification import identification_report
from benchmark.evaluation.intervals import far_is_reliable, rate_interval, wilson
from benchmark.evaluation.verification import verification_report

Z = 1.959963985  # the 97.5% normal quantile


def _wilson_by_hand(k: int, n: int) -> list[float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return [centre - half, centre + half]


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (3, 3000), (48, 64), (1, 2)])
def test_wilson_matches_the_formula_and_stays_inside_0_1(k, n):
    lo, hi = wilson(k, n)
    assert [lo, hi] == pytest.approx(_wilson_by_hand(k, n), abs=1e-9)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_narrows_as_trials_grow_and_has_none_without_trials():
    widths = [np.diff(wilson(n // 2, n))[0] for n in (16, 64, 256, 1024)]
    assert all(a > b for a, b in zip(widths, widths[1:]))
    assert widths[2] < 0.125  # about 256 pairs for +-6 points at a rate of 0.5
    assert wilson(0, 0) is None and rate_interval(float("nan"), 5) is None and rate_interval(0.5, 0) is None
    assert rate_interval(2 / 7, 7) == wilson(2, 7)


@pytest.mark.parametrize("k, n, confidence, fragment", [(5, 3, 0.95, "5 successes of 3 trials"),
                                                         (-1, 3, 0.95, "-1 successes"), (1, 3, 1.0, "confidence")])
def test_wilson_rejects_impossible_counts(k, n, confidence, fragment):
    with pytest.raises(ValueError, match=fragment):
        wilson(k, n, confidence)


def test_far_is_reliable_needs_ten_expected_false_accepts():
    assert not far_is_reliable(1e-3, 3000) and far_is_reliable(1e-2, 3000) and far_is_reliable(1e-3, 10_000)


def test_verification_report_gives_intervals_and_flags_a_far_below_ten_false_accepts():
    # Prepare: 300 genuine and 300 impostor pairs with overlapping scores, in 10 folds
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(300, int), np.zeros(300, int)]
    scores = np.r_[rng.normal(1.0, 1.0, 300), rng.normal(-1.0, 1.0, 300)]
    folds = np.arange(600) % 10
    # Execute
    report = verification_report(scores, labels, folds)
    # Assert: 300 impostors give 3 false accepts at FAR 1e-2 and 0.3 at 1e-3: both unreliable
    lo, hi = report["accuracy_ci"]
    assert lo < report["accuracy_mean"] < hi and hi - lo < 0.1
    for key in ("1e-2", "1e-3"):
        assert report[f"tar_at_far_{key}_reliable"] is False
        assert report[f"tar_at_far_{key}_ci"] == pytest.approx(wilson(round(report[f"tar_at_far_{key}"] * 300), 300))


def test_identification_report_gives_intervals_over_the_mated_probes():
    # Prepare: 4 enrolled identities, 8 mated probes (6 nearest their own), 2 non-mated
    rng = np.random.default_rng(1)
    sim = rng.uniform(0.0, 0.5, (10, 4))
    probe_labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 7, 8])
    sim[np.arange(6), probe_labels[:6]] = 0.9
    # Execute
    report = identification_report(sim, probe_labels, np.arange(4))
    # Assert
    assert report["rank1"] >= 0.75 and report["rank1_ci"] == wilson(round(report["rank1"] * 8), 8)
    assert report["dir_at_fpir_0.1_ci"] == rate_interval(report["dir_at_fpir_0.1"], 8)
