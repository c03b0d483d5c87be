"""The evaluate stage end to end on a tiny preset: every variant's checkpoint in, the metrics contract out."""

import json

import pytest

from benchmark import config
from benchmark.data import stage as data_stage
from benchmark.evaluation import stage as evaluate_stage
from benchmark.models.checkpoint import save_model
from benchmark.models.face_model import build_face_model


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
            "variants": ["one", "two"],
            "robustness": {"attacks": ["fgsm", "pgd_l2"], "pairs": 8, "steps": 2, "binary_steps": 1},
        },
    }
    params = config.build(config.Params, raw)
    data_stage.run(params)
    for seed, name in enumerate(["one", "two"]):
        model = build_face_model("ae_encoder", seed=seed, embedding_dim=16, image_size=32, channels=(4, 8, 8))
        save_model(model, root / f"a/models/{name}.pt", {"verification": {"threshold": 0.4}})
    return root, params


@pytest.mark.slow
def test_evaluate_stage_writes_robustness_and_transfer_contracts(tiny):
    # Prepare
    root, params = tiny
    # Execute
    result = evaluate_stage.run(params)
    # Assert
    robustness = json.loads((root / "r/metrics/robustness.json").read_text())
    transfer = json.loads((root / "r/metrics/transfer.json").read_text())
    assert robustness == result.robustness and list(robustness) == ["one", "two"]
    for variant in robustness.values():
        assert list(variant) == ["fgsm", "pgd_l2"]
        for report in variant.values():
            assert set(report["eps_4"]) == {"dodging_asr", "impersonation_asr", "robust_accuracy"}
            assert set(report["median_min_perturbation"]) == {"dodging", "impersonation"}
    assert set(transfer["matrix"]) == {"one", "two"} and set(transfer["matrix"]["one"]) == {"one", "two"}
    assert set(result.seconds) == {"one", "two"}


def test_evaluate_stage_names_a_checkpoint_without_threshold(tiny):
    # Prepare
    root, params = tiny
    save_model(build_face_model("ae_encoder", image_size=32, channels=(4, 8, 8)), root / "a/models/bare.pt", {})
    # Execute / Assert
    with pytest.raises(ValueError, match=r"bare.pt' has no meta\['verification'\]\['threshold'\]"):
        evaluate_stage.load_variant(params, "bare")
