"""The label-fraction study's pieces: nested labelled splits, the paired test over seeds, and the study table."""

import dataclasses
import json

import numpy as np
import pytest

from benchmark.data.protocol import Protocol, relabelled
from benchmark.evaluation.paired import paired_difference_over_seeds
from benchmark.report.label_study import loaded_run, merged_runs, stored_run, study_table


def _protocol(n_train=200):
    empty = np.zeros(0, dtype=np.int64)
    train = np.arange(10, 10 + n_train)
    return Protocol(train, empty, empty, np.zeros((0, 2), np.int64), empty, train, empty, empty,
                    np.zeros((0, 2), np.int64), empty, empty, empty, empty, True)


def test_relabelled_splits_are_nested_per_seed_and_cover_the_training_images():
    base = _protocol()
    splits = {f: relabelled(base, f, seed=3) for f in (0.05, 0.1, 0.25, 1.0)}
    assert [len(s.labelled) for s in splits.values()] == [10, 20, 50, 200]
    assert set(splits[0.05].labelled) < set(splits[0.1].labelled) < set(splits[0.25].labelled)
    for s in splits.values():
        assert sorted(np.concatenate([s.labelled, s.unlabelled])) == list(base.train)
    assert not np.array_equal(relabelled(base, 0.1, seed=4).labelled, splits[0.1].labelled)
    assert relabelled(base, 0.001, 0).labelled.size == 1 and np.array_equal(splits[1.0].train, base.train)
    with pytest.raises(ValueError, match=r"label fraction must be in \(0, 1\], got 0"):
        relabelled(base, 0, 0)


def test_the_paired_test_over_seeds_finds_a_real_gap_and_not_a_tie():
    rng = np.random.default_rng(0)
    b = rng.random((3, 1000)) < 0.7
    a = b | (rng.random((3, 1000)) < 0.2)  # a gets every pair b gets, and more
    gap = paired_difference_over_seeds(a, b)
    assert gap["difference"] == pytest.approx((a.mean() - b.mean())) and gap["ci"][0] > 0 and gap["p_value"] < 0.01
    assert gap["seeds"] == 3 and gap["pairs"] == 1000
    noise = paired_difference_over_seeds(rng.random((3, 600)) < 0.7, rng.random((3, 600)) < 0.7)
    assert noise["ci"][0] < 0 < noise["ci"][1] and noise["p_value"] > 0.05
    tie = paired_difference_over_seeds(b, b)
    assert tie["difference"] == 0 and tie["ci"] == [0.0, 0.0] and tie["p_value"] == 1.0
    with pytest.raises(ValueError, match="one shape"):
        paired_difference_over_seeds(a, b[:2])


def _run(seed, fraction, stage, correct):
    return {"seed": seed, "fraction": fraction, "stage": stage, "init": "scratch", "labelled": 10, "unlabelled": 90,
            "epochs": 3, "accuracy": float(np.mean(correct)), "correct": list(map(bool, correct))}


def test_study_table_pairs_the_stages_per_fraction_over_the_seeds_both_ran():
    # Prepare: fraction 0.1 with seeds 0 and 1 for both stages (semi gets one more pair right in each); fraction 0.5
    # where the supervised stage has seed 0 only
    rows = [_run(s, 0.1, "supervised", [1, 0, 0, 1]) for s in (0, 1)]
    rows += [_run(s, 0.1, "semisupervised", [1, 1, 0, 1]) for s in (0, 1)]
    rows += [_run(0, 0.5, "supervised", [1, 1, 1, 1]), _run(0, 0.5, "semisupervised", [1, 1, 1, 0]),
             _run(1, 0.5, "semisupervised", [0, 0, 0, 0])]
    # Execute
    table = study_table(rows)["scratch"]
    # Assert
    assert list(table) == ["0.1", "0.5"]
    assert table["0.1"]["supervised"] == 0.5 and table["0.1"]["semisupervised"] == 0.75
    assert table["0.1"]["difference"] == pytest.approx(0.25) and table["0.1"]["seeds"] == [0, 1]
    assert table["0.1"]["supervised_std"] == 0 and table["0.1"]["epochs"] == {"supervised": [3, 3], "semisupervised": [3, 3]}
    assert table["0.5"]["seeds"] == [0] and table["0.5"]["semisupervised_std"] is None
    assert table["0.5"]["difference"] == pytest.approx(-0.25) and table["0.5"]["verdict"] in ("not shown", "loss shown")


def test_a_stored_run_keeps_every_pairs_outcome_and_merging_replaces_only_the_same_run():
    rng = np.random.default_rng(1)
    run = _run(0, 0.1, "supervised", rng.random(6003) < 0.6)
    stored = stored_run(run)
    assert stored["pairs"] == 6003 and isinstance(stored["correct"], str) and len(stored["correct"]) < 1100
    assert loaded_run(json.loads(json.dumps(stored))) == run
    again = _run(0, 0.1, "supervised", [0, 0, 0])
    other = [_run(1, 0.1, "supervised", [1]), _run(0, 0.05, "semisupervised", [1])]
    merged = merged_runs([run, *other], [again])
    assert merged == [other[1], again, other[0]]
