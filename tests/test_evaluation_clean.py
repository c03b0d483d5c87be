"""Clean evaluation of a variant and the ROC rows that overlay variants in `dvc plots`."""

import numpy as np
import pytest

from benchmark.evaluation.clean import VERIFICATION_KEYS, clean_report, roc_rows
from benchmark.evaluation.verification import tar_at_far


def split_of(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Two images per identity: the first is the gallery image, the second a probe; genuine pairs are the two
    images of an identity, impostor pairs the first images of neighbouring identities; the last two identities are
    never enrolled."""
    ids = np.unique(labels)
    first = np.array([np.flatnonzero(labels == i)[0] for i in ids])
    second = np.array([np.flatnonzero(labels == i)[1] for i in ids])
    genuine = np.stack([first, second], 1)
    impostor = np.stack([first, np.roll(first, 1)], 1)
    return {"pairs": np.concatenate([genuine, impostor]),
            "is_same": np.r_[np.ones(len(ids)), np.zeros(len(ids))].astype(np.int64),
            "folds": np.tile(np.arange(2), len(ids)), "gallery": first[:-2], "probes": np.r_[second, first[-2:]]}


def test_clean_report_is_perfect_for_separable_embeddings_and_has_the_contract_keys():
    # Prepare
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 2)
    centres = np.linalg.qr(rng.normal(size=(16, 16)))[0][:10]
    embeddings = centres[labels] + 0.01 * rng.normal(size=(20, 16))
    # Execute
    report, scores = clean_report(embeddings, labels, **split_of(labels))
    # Assert
    assert set(report["verification"]) == set(VERIFICATION_KEYS)
    assert report["verification"]["accuracy_mean"] == 1.0 and report["verification"]["eer"] == 0.0
    assert report["identification"]["rank1"] == 1.0 and report["identification"]["non_mated"] == 4
    assert scores.shape == (20,)


def test_clean_report_drops_to_chance_for_random_embeddings():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(40), 2)
    report, _ = clean_report(rng.normal(size=(80, 32)), labels, **split_of(labels))
    assert report["verification"]["auc"] < 0.75 and report["identification"]["rank1"] < 0.3


def test_clean_report_of_a_pairs_only_set_has_no_identification():
    # Prepare: an LFW pairs set: pairs and folds, no gallery/probe split.
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(10), 2)
    centres = np.linalg.qr(rng.normal(size=(16, 16)))[0][:10]
    split = split_of(labels)
    empty = np.zeros(0, np.int64)
    # Execute
    report, scores = clean_report(centres[labels], labels, split["pairs"], split["is_same"], split["folds"],
                                  empty, empty)
    # Assert
    assert set(report) == {"verification"} and report["verification"]["accuracy_mean"] == 1.0
    assert scores.shape == (20,)


def test_roc_rows_sample_each_variant_with_the_tar_at_far_rule():
    rng = np.random.default_rng(2)
    is_same = np.r_[np.ones(200), np.zeros(200)].astype(int)
    scores = {"good": rng.normal(is_same * 2.0), "bad": rng.normal(is_same * 0.3)}
    rows = roc_rows(scores, is_same, points=20, min_far=0.01)
    assert len(rows) == 20 and rows[0]["far"] == pytest.approx(0.01) and rows[-1]["far"] == pytest.approx(1.0)
    for row in rows:
        for name, s in scores.items():
            assert row[name] == pytest.approx(tar_at_far(s, is_same, row["far"]))
    assert all(r["good"] >= r["bad"] for r in rows[5:])
    assert [r["good"] for r in rows] == sorted(r["good"] for r in rows)
