"""The data stage end to end (without its notebook): outputs, determinism, real folders, bad paths."""

import dataclasses
import json

import numpy as np
import pytest

from benchmark import config
from benchmark.data import stage
from benchmark.data.dataset import BenchmarkSet
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
    # Execute
    first = stage.run(tiny_params(tmp_path / "1"))
    second = stage.run(tiny_params(tmp_path / "2"))

    # Assert: data.json's contract: counts, the training block, one block per benchmark set, eigenfaces per set.
    metrics = json.loads((tmp_path / "1/r/metrics/data.json").read_text())
    for key in ("identities", "images", "unusable_inputs", "seconds"):
        assert key in metrics
    # 24 identities: 8 test (33%), 2 validation (10% of the other 16, at least 2), 14 training.
    assert metrics["training"] == {"identities": 14, "images": len(first.protocol.train), "val_identities": 2,
                                   "val_pairs": len(first.protocol.val_pairs)}
    assert metrics["benchmarks"] == {"heldout": {"format": "split", "pairs": 80, "identities": 8, "images": 32,
                                                 "unusable": 0, "overlap_identities": 0}}
    assert set(metrics["eigenfaces"]) == {"heldout"}
    assert set(metrics["eigenfaces"]["heldout"]) == {"accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far_1e-3"}
    assert first.manifest["hashes"] == second.manifest["hashes"]
    with np.load(tmp_path / "1/a/data/faces.npz") as faces, np.load(tmp_path / "1/a/data/protocol.npz") as proto:
        assert faces["images"].shape == (96, 32, 32, 3)
        assert len(proto["pairs"]) == len(proto["is_same"]) == len(proto["folds"]) == 80
        test_images, test_pairs = faces["images"][proto["test"]], faces["images"][proto["pairs"]]
    # The held-out set is the test identities' images, its pairs the protocol's pairs on them.
    with np.load(tmp_path / "1/a/data/benchmarks/heldout.npz") as held, \
            np.load(tmp_path / "2/a/data/benchmarks/heldout.npz") as again:
        bench = BenchmarkSet.from_arrays(dict(held))
        assert all(np.array_equal(held[k], again[k]) for k in held.files)
    assert bench.name == "heldout" and bench.format == "split"
    np.testing.assert_array_equal(bench.images, test_images)
    np.testing.assert_array_equal(bench.images[bench.pairs], test_pairs)
    assert bench.has_identification and not bench.detected.any()
    assert (tmp_path / "1/a/data/videos.npz").is_file()
    assert not list((tmp_path / "1").rglob("*.tmp"))


def test_the_data_follows_data_seed_not_the_training_seed(tmp_path):
    # Execute: the default, another training seed, another data seed
    default = stage.run(tiny_params(tmp_path / "0"))
    training = stage.run(dataclasses.replace(tiny_params(tmp_path / "1"), seed=5))
    data = stage.run(tiny_params(tmp_path / "2", seed=1))
    # Assert: seed runs share faces, split and pairs; the manifest records the data seed
    assert training.manifest["hashes"] == default.manifest["hashes"]
    assert data.manifest["hashes"]["faces_sha256"] != default.manifest["hashes"]["faces_sha256"]
    assert (default.manifest["seed"], training.manifest["seed"], data.manifest["seed"]) == (0, 0, 1)


def test_missing_folder_is_a_clear_error_and_writes_nothing(tmp_path):
    params = tiny_params(tmp_path, source="folder", path=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="nope"):
        stage.run(params)
    assert not (tmp_path / "a").exists() and not (tmp_path / "r").exists()


@pytest.mark.real_data
def test_orl_folder_runs_through_the_stage(tmp_path, real_data_dir):
    params = tiny_params(tmp_path, source="folder", path=str(real_data_dir / "orl"), image_size=64, detect="never")

    result = stage.run(params)

    counts = result.manifest["counts"]
    assert counts["identities"] == 40 and counts["images"] == 400
    assert {u["path"] for u in result.manifest["unusable"]} == {"orl/README.orig", "orl/SOURCE.txt"}
    assert len(result.manifest["inputs"]) == 400 and all(len(i["sha256"]) == 64 for i in result.manifest["inputs"])
    assert {i["face"] for i in result.manifest["inputs"]} == {"crop"}
    assert result.manifest["preparation"]["taken_as_crop"] == 400
    assert result.videos is None
    heldout = result.metrics["benchmarks"]["heldout"]
    assert heldout["identities"] == counts["test_identities"] == 13 and heldout["overlap_identities"] == 0
    assert 0.5 < result.metrics["eigenfaces"]["heldout"]["accuracy_mean"] <= 1.0
