"""The evaluate stage end to end on a tiny preset: every variant's checkpoint in, the metrics contract out."""

import json

import numpy as np
import pytest

from benchmark import config
from benchmark.data import stage as data_stage
from benchmark.evaluation import stage as evaluate_stage
from benchmark.evaluation.clean import VERIFICATION_KEYS
from benchmark.evaluation.robustness_runner import attacks_of
from benchmark.evaluation.verification import cosine_scores, verification_report
from benchmark.models.checkpoint import embed_images, load_model, save_model
from benchmark.data.dataset import load_dataset
from benchmark.models.face_model import build_face_model
from benchmark.train.recipe import val_pairs, validation_meta


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_eval")
    raw = {
        "paths": {"artifacts": str(root / "a"), "reports": str(root / "r")},
        "data": {
            "image_size": 32,
            "synthetic": {"identities": 16, "images_per_identity": 3, "video_frames": 4},
            "protocol": {"folds": 2, "pairs_per_fold": 6, "institutions": 2},
        },
        "evaluate": {
            "variants": ["timm_reference", "trades"],
            "robustness": {"attacks": ["fgsm", "pgd_linf"], "pairs": 8, "steps": 2, "binary_steps": 1,
                           "headline_pairs": 16, "square_queries": 5},
        },
    }
    params = config.build(config.Params, raw)
    data_stage.run(params)
    pairs = val_pairs(load_dataset(params))
    for seed, name in enumerate(["timm_reference", "trades"]):
        model = build_face_model("ae_encoder", seed=seed, embedding_dim=16, input_size=32, image_size=32, channels=(4, 8, 8))
        save_model(model, root / f"a/models/{name}.pt", {"validation": validation_meta(model, pairs)})
    return root, params


@pytest.mark.slow
def test_evaluate_stage_writes_evaluation_robustness_and_transfer_contracts(tiny):
    # Prepare
    root, params = tiny
    # Execute
    result = evaluate_stage.run(params)
    # Assert
    robustness = json.loads((root / "r/metrics/robustness.json").read_text())
    transfer = json.loads((root / "r/metrics/transfer.json").read_text())
    assert robustness == result.robustness and list(robustness) == ["timm_reference", "trades"]
    assert all(list(per_set) == ["heldout"] for per_set in robustness.values())
    rates = {"dodging_asr", "impersonation_asr", "robust_accuracy"}
    for variant in robustness.values():
        assert list(variant["heldout"]) == ["fgsm", "pgd_linf", "worst_case_robust_accuracy"]
        for report in attacks_of(variant["heldout"]).values():
            assert set(report["eps_4"]) == rates | {f"{r}_{end}" for r in rates for end in ("ci", "n")}
            assert set(report["median_min_perturbation"]) == {"dodging", "impersonation"}
        worst = variant["heldout"]["worst_case_robust_accuracy"]["eps_4"]
        assert set(worst) == {"value", "ci", "n", "attacks", "pgd_linf"} and worst["n"] == 16
        assert worst["attacks"] == ["pgd_linf", "apgd", "square"] and worst["value"] <= worst["pgd_linf"]["value"]
    assert set(transfer["matrix"]) == {"timm_reference", "trades"} and set(transfer["matrix"]["timm_reference"]) == {"timm_reference", "trades"}
    assert transfer["benchmark"] == "heldout"
    assert set(result.seconds) == {"timm_reference", "trades"}
    evaluation = json.loads((root / "r/metrics/evaluation.json").read_text())
    assert list(evaluation) == ["timm_reference", "trades"]
    for name, per_set in evaluation.items():
        variant = per_set["heldout"]
        assert set(variant) == {"verification", "identification", "robustness"}
        assert set(VERIFICATION_KEYS) == set(variant["verification"])
        assert {"rank1", "rank5"} <= set(variant["identification"])
        assert variant["robustness"] == robustness[name]["heldout"]
    # the clean verification is the training source's test pairs with flip-test fusion: recomputing it agrees
    data = load_dataset(params)
    model = load_model(root / "a/models/timm_reference.pt")
    scores = cosine_scores(embed_images(model, data.images, flip=True), data.protocol.pairs)
    report = verification_report(scores, data.protocol.is_same, data.protocol.folds)
    assert evaluation["timm_reference"]["heldout"]["verification"]["accuracy_mean"] == pytest.approx(report["accuracy_mean"])
    roc = json.loads((root / "r/plots/evaluate/roc.json").read_text())
    assert set(roc[0]) == {"far", "timm_reference", "trades"} and roc[-1]["timm_reference"] == 1.0
    asr = json.loads((root / "r/plots/evaluate/asr_vs_eps.json").read_text())
    assert [r["eps"] for r in asr] == [1, 2, 4, 8, 16] and set(asr[0]) == {"eps", "timm_reference_dodging", "timm_reference_impersonation", "trades_dodging", "trades_impersonation"}
    # no claim names these two variants: the findings are an empty list
    assert json.loads((root / "r/metrics/findings.json").read_text()) == result.findings == []


def test_findings_decide_the_claims_on_every_set_and_the_fine_tuned_against_pretrained():
    # Prepare: three variants on two sets
    rng = np.random.default_rng(0)
    variants = ("pretrained", "supervised", "semisupervised")
    clean = {s: {v: rng.random(300) < 0.8 for v in variants} for s in ("h", "o")}
    robust = {s: {v: rng.random(256) < 0.2 for v in variants} for s in ("h", "o")}
    evaluation = {v: {s: {"verification": {"accuracy_std": 0.02}} for s in ("h", "o")} for v in clean["h"]}
    weights = {"pretrained": "facenet_casia as is", "supervised": "fine-tuned from facenet_casia",
               "semisupervised": "scratch"}
    # Execute
    decided = evaluate_stage.findings(clean, robust, evaluation, weights, seed=0)
    # Assert: per set, semisupervised vs supervised (clean) and fine-tuned supervised vs pretrained
    assert [(f["benchmark"], f["a"], f["b"]) for f in decided] == [
        ("h", "semisupervised", "supervised"), ("h", "supervised", "pretrained"),
        ("o", "semisupervised", "supervised"), ("o", "supervised", "pretrained")]
    assert decided[1]["margin"] == 0.02 and all(f["verdict"] in ("met", "missed", "not shown") for f in decided)


def test_evaluate_stage_names_a_checkpoint_without_threshold(tiny):
    # Prepare
    root, params = tiny
    save_model(build_face_model("ae_encoder", image_size=32, channels=(4, 8, 8)), root / "a/models/bare.pt", {})
    # Execute / Assert
    with pytest.raises(ValueError, match=r"bare.pt' has no meta\['validation'\] thresholds"):
        evaluate_stage.load_variant(params, "bare")
