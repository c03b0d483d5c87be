"""The data stage end to end (without its notebook): outputs, determinism, real folders, bad paths."""

import json

import numpy as np
import pytest

from benchmark import config
from benchmark.data import stage
from benchmark.errors import DataError


def tiny_params(tmp_path, **data):
    raw = {
        "paths": {"artifacts": str(tmp_path / "a"), "reports": str(tmp_path / "r")},
        "data": {
            "image_size": 32,
            "synthetic": {"identities": 24, "images_per_identity": 4, "video_frames": 5},
            "protocol": {"folds": 4, "pairs_per_fold": 10, "institutions": 2},
            **data,
        },
    }
    return config.build(config.Params, raw)


def test_synthetic_stage_writes_contract_and_is_deterministic(tmp_path):
    first = stage.run(tiny_params(tmp_path / "1"))
    second = stage.run(tiny_params(tmp_path / "2"))
    metrics = json.loads((tmp_path / "1/r/metrics/data.json").read_text())
    for key in ("identities", "images", "unusable_inputs", "seconds"):
        assert key in metrics
    assert set(metrics["eigenfaces"]) >= {"verification_accuracy", "auc", "eer"}
    assert first.manifest["hashes"] == second.manifest["hashes"]
    with np.load(tmp_path / "1/a/data/faces.npz") as faces, np.load(tmp_path / "1/a/data/protocol.npz") as proto:
        assert faces["images"].shape == (96, 32, 32, 3)
        assert len(proto["pairs"]) == len(proto["is_same"]) == len(proto["folds"]) == 80
    assert (tmp_path / "1/a/data/videos.npz").is_file()
    assert not list((tmp_path / "1").rglob("*.tmp"))


def test_missing_folder_is_a_clear_error_and_writes_nothing(tmp_path):
    params = tiny_params(tmp_path, source="folder", path=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="nope"):
        stage.run(params)
    assert not (tmp_path / "a").exists() and not (tmp_path / "r").exists()


@pytest.mark.real_data
def test_orl_folder_runs_through_the_stage(tmp_path, real_data_dir):
    result = stage.run(tiny_params(tmp_path, source="folder", path=str(real_data_dir / "orl"), image_size=64))
    counts = result.manifest["counts"]
    assert counts["identities"] == 40 and counts["images"] == 400
    assert {u["path"] for u in result.manifest["unusable"]} == {"orl/README.orig", "orl/SOURCE.txt"}
    assert len(result.manifest["inputs"]) == 400 and all(len(i["sha256"]) == 64 for i in result.manifest["inputs"])
    assert result.videos is None
    assert 0.5 < result.metrics["eigenfaces"]["verification_accuracy"] <= 1.0
