"""The robustness runner and the evaluate stage on a tiny model and synthetic pairs."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmark.config import RobustnessConfig
from benchmark.evaluation.robustness import correct
from benchmark.evaluation.robustness_runner import (LEVELS, WORST_CASE, attacks_of, budgets, pgd_robust_accuracy,
                                                    robustness_report, select_pairs, transfer_matrix)
from benchmark.evaluation.verification import cosine_scores
from benchmark.models.checkpoint import embed_images
from benchmark.evaluation.stage import asr_table, transfer_array
from benchmark.models.face_model import build_face_model

ROOT = Path(__file__).resolve().parents[1]

SIZE = 32
CFG = RobustnessConfig(attacks=("fgsm", "pgd_linf"), pairs=16, steps=3, binary_steps=2, headline_pairs=24, square_queries=10)


def tiny(seed: int):
    return build_face_model("ae_encoder", seed=seed, embedding_dim=16, image_size=SIZE, channels=(4, 8, 8)).eval()


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, SIZE, SIZE, 3), dtype=np.uint8)
    pairs = np.stack([np.arange(0, 24, 2), np.arange(1, 24, 2)], axis=1)
    pairs = np.concatenate([pairs, pairs[:, ::-1] + 0])
    is_same = np.arange(len(pairs)) % 2 == 0
    return images, pairs, is_same


def test_select_pairs_is_balanced_deterministic_and_capped():
    is_same = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    a, b = select_pairs(is_same, 4, seed=1), select_pairs(is_same, 4, seed=1)
    np.testing.assert_array_equal(a, b)
    assert is_same[a].sum() == 2 and (~is_same[a]).sum() == 2
    assert is_same[select_pairs(is_same, 100, seed=1)].sum() == 3


def test_pgd_robust_accuracy_is_the_clean_accuracy_at_zero_budget_and_falls_with_one(setup):
    # Prepare: the threshold at the median clean score of the 24 pairs
    images, pairs, is_same = setup
    model = tiny(0)
    scores = cosine_scores(embed_images(model, images), pairs)
    threshold = float(np.median(scores))
    clean = correct(scores, is_same, threshold).mean()
    # Execute
    none = pgd_robust_accuracy(model, images, pairs, is_same, threshold, 0.0, 100, seed=0)
    some = pgd_robust_accuracy(model, images, pairs, is_same, threshold, 8 / 255, 100, seed=0)
    # Assert: every pair is attacked (24 < 100), nothing breaks without a budget, and 8/255 breaks some
    assert none["n"] == some["n"] == 24 and none["steps"] == 10
    assert none["value"] == pytest.approx(clean, abs=1e-6)
    assert some["value"] < none["value"]
    assert some["ci"][0] <= some["value"] <= some["ci"][1]


def test_l2_budgets_follow_the_documented_schedule():
    cfg = RobustnessConfig(l2_scale=0.25)
    np.testing.assert_allclose(budgets("pgd_l2", (3, 64, 64), cfg), 0.25 * np.array(LEVELS) / 255 * np.sqrt(3 * 64 * 64))
    np.testing.assert_allclose(budgets("mifgsm", (3, 64, 64), cfg), np.array(LEVELS) / 255)


def test_robustness_report_has_the_contract_shape_and_consistent_values(setup):
    # Prepare: the threshold at the median clean score, so both kinds of pair have correct ones
    images, pairs, is_same = setup
    model = tiny(0)
    # Execute
    result = robustness_report(model, images, pairs, is_same, 0.5, CFG, seed=0)
    report = result.report
    # Assert
    assert list(report) == [*CFG.attacks, WORST_CASE]
    for attack, r in attacks_of(report).items():
        assert list(r) == [f"eps_{n}" for n in LEVELS] + ["median_min_perturbation"]
        assert set(r["median_min_perturbation"]) == {"dodging", "impersonation"}
        asr = [r[f"eps_{n}"]["dodging_asr"] for n in LEVELS]
        acc = [r[f"eps_{n}"]["robust_accuracy"] for n in LEVELS]
        assert asr == sorted(asr) and acc == sorted(acc, reverse=True)
        assert all(0 <= v <= 1 for v in asr + acc)
    assert report["pgd_linf"]["eps_16"]["dodging_asr"] > 0.5
    # the median minimal dodging budget is at most the first budget that broke more than half the pairs
    levels = budgets("pgd_linf", (3, SIZE, SIZE), CFG)
    first = next(i for i, n in enumerate(LEVELS) if report["pgd_linf"][f"eps_{n}"]["dodging_asr"] > 0.5)
    median = report["pgd_linf"]["median_min_perturbation"]["dodging"]
    assert median is not None and 0 < median <= levels[first] + 1e-9
    # each rate's interval holds it and counts its pairs
    for attack in CFG.attacks:
        for n in LEVELS:
            level = report[attack][f"eps_{n}"]
            lo, hi = level["robust_accuracy_ci"]
            assert level["robust_accuracy_n"] == 16 and lo <= level["robust_accuracy"] <= hi
    # the headline check: PGD on 24 pairs (a superset of the sweep's 16), then APGD and Square on what it left
    check = report[WORST_CASE]["eps_4"]
    assert check["n"] == len(result.pgd_correct) == 24 and check["attacks"] == ["pgd_linf", "apgd", "square"]
    assert check["pgd_linf"]["value"] == pytest.approx(result.pgd_correct.mean())
    assert check["value"] <= check["pgd_linf"]["value"] and check["ci"][0] <= check["value"] <= check["ci"][1]
    assert set(select_pairs(is_same, 16, 0)) <= set(select_pairs(is_same, 24, 0))


def test_robustness_report_is_deterministic(setup):
    images, pairs, is_same = setup
    cfg = RobustnessConfig(attacks=("pgd_linf",), pairs=8, steps=2, binary_steps=1, square_queries=5)
    a, b = (robustness_report(tiny(0), images, pairs, is_same, 0.5, cfg, 3) for _ in range(2))
    assert a.report == b.report
    np.testing.assert_array_equal(a.pgd_correct, b.pgd_correct)


def test_transfer_matrix_has_every_source_and_target(setup):
    # Prepare
    images, pairs, is_same = setup
    models = {"a": tiny(0), "b": tiny(1)}
    # Execute
    matrix = transfer_matrix(models, images, pairs, is_same, {"a": 0.3, "b": 0.3}, RobustnessConfig(pairs=16, steps=3, transfer_eps=16), 0)
    names, values = transfer_array(matrix)
    # Assert
    assert names == ["a", "b"] and values.shape == (2, 2)
    assert np.all((values >= 0) & (values <= 1))
    assert values[0, 0] > 0.5 and values[1, 1] > 0.5


def test_asr_table_flattens_the_report():
    eps_1 = {"dodging_asr": 0.1, "impersonation_asr": 0.2, "robust_accuracy": 0.9}
    eps_4 = {"dodging_asr": 0.5, "impersonation_asr": 0.6, "robust_accuracy": 0.4}
    median = {"dodging": 0.01, "impersonation": None}
    report = {"v": {"heldout": {"fgsm": {"eps_1": eps_1, "median_min_perturbation": median}},
                    "lfw": {"fgsm": {"eps_4": eps_4}}}}
    assert asr_table(report) == [{"variant": "v", "benchmark": "heldout", "attack": "fgsm", "eps": 1, **eps_1},
                                 {"variant": "v", "benchmark": "lfw", "attack": "fgsm", "eps": 4, **eps_4}]


def test_evaluate_stage_depends_on_the_model_of_every_variant():
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]["deps"]
    for variant in yaml.safe_load((ROOT / "params.yaml").read_text())["evaluate"]["variants"]:
        assert f"${{paths.artifacts}}/models/{variant}.pt" in deps
