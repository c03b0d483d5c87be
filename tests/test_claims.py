"""Claims decided by paired tests: the verdict rule on hand-made intervals, and decisions on scripted outcomes."""

import numpy as np
import pytest

from benchmark.evaluation.claims import CLAIMS, FOLD_STD, Claim, decide, fine_tuning_claims, judge


@pytest.mark.parametrize("ci, kind, margin, expected", [
    ([0.01, 0.03], "better", 0.0, "met"),
    ([-0.03, -0.01], "better", 0.0, "missed"),
    ([-0.01, 0.02], "better", 0.0, "not shown"),
    ([-0.015, 0.01], "no_worse", 0.02, "met"),
    ([-0.05, -0.03], "no_worse", 0.02, "missed"),
    ([-0.03, -0.01], "no_worse", 0.02, "not shown"),
    ([0.0, 0.0], "no_worse", 0.0, "not shown"),  # "at least" with margin 0: a tie is not shown above
    ([-0.004, 0.003], "within", 0.005, "met"),
    ([0.006, 0.02], "within", 0.005, "missed"),
    ([-0.02, -0.006], "within", 0.005, "missed"),
    ([-0.01, 0.003], "within", 0.005, "not shown"),
])
def test_judge_reads_the_interval_against_the_target(ci, kind, margin, expected):
    assert judge(ci, kind, margin) == expected


def test_claims_reject_unknown_kinds_metrics_and_negative_margins():
    with pytest.raises(ValueError, match="claim kind 'similar'"):
        Claim("x", "a", "b", "clean", "similar", 0.0, "")
    with pytest.raises(ValueError, match="metric 'speed'"):
        Claim("x", "a", "b", "speed", "better", 0.0, "")
    with pytest.raises(ValueError, match="margin must be >= 0"):
        Claim("x", "a", "b", "clean", "better", -0.5, "")


def test_decide_tests_each_claim_on_the_same_pairs_and_skips_missing_variants():
    # Prepare: 400 pairs; semisupervised right on every pair supervised gets right plus 40 more
    rng = np.random.default_rng(0)
    supervised = rng.random(400) < 0.8
    semi = supervised.copy()
    semi[np.flatnonzero(~supervised)[:40]] = True
    outcomes = {"clean": {"supervised": supervised, "semisupervised": semi}}
    # Execute
    decided = decide(CLAIMS, outcomes, {"supervised": 0.02, "semisupervised": 0.02}, "heldout", seed=0)
    # Assert: only the claim whose two variants have outcomes is decided
    assert len(decided) == 1
    f = decided[0]
    assert (f["a"], f["b"], f["metric"], f["kind"], f["benchmark"]) == ("semisupervised", "supervised", "clean", "better",
                                                                         "heldout")
    assert f["difference"] == pytest.approx(0.1) and f["pairs"] == 400 and f["p_value"] < 1e-9
    assert f["ci"][0] > 0 and f["verdict"] == "met"


def test_fine_tuning_claims_take_the_variant_s_own_fold_std_as_margin():
    # Prepare: the fine-tuned variant is 1 point below the reference on 1000 pairs
    reference = np.ones(1000, bool)
    tuned = reference.copy()
    tuned[:10] = False
    claims = fine_tuning_claims("pretrained", ["supervised"])
    # Execute
    wide = decide(claims, {"clean": {"supervised": tuned, "pretrained": reference}}, {"supervised": 0.05}, "h", 0)
    narrow = decide(claims, {"clean": {"supervised": tuned, "pretrained": reference}}, {"supervised": 0.001}, "h", 0)
    # Assert
    assert claims[0].margin == FOLD_STD and wide[0]["margin"] == 0.05 and wide[0]["verdict"] == "met"
    assert narrow[0]["verdict"] == "missed"
