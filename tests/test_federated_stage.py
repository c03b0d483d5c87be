"""The Flower apps in process on a tiny preset: faults during real rounds, and the stage's outputs."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from flwr.app import Message

from benchmark import cli, config
from benchmark.data import stage as data_stage
from benchmark.federated import stage
from benchmark.federated.server_app import QuorumError
from benchmark.models.checkpoint import embed_images, load_model

ROOT = Path(__file__).resolve().parents[1]
TINY_FED = {
    "rounds": 2,
    "local_epochs": 1,
    "batch_size": 16,
    "embedding_dim": 16,
    "min_institutions": 3,
    "privacy": {"iterations": 30},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("fed")
    raw = {
        "paths": {"artifacts": str(root / "a"), "reports": str(root / "r")},
        "data": {
            "image_size": 32,
            "synthetic": {"identities": 30, "images_per_identity": 4, "video_frames": 5},
            "protocol": {"folds": 4, "pairs_per_fold": 10, "institutions": 4},
        },
        "federated": TINY_FED,
    }
    params = config.build(config.Params, raw)
    data_stage.run(params)
    return root, params


def with_federated(params, **kw):
    return config.build(config.Params, {**config.as_dict(params), "federated": {**TINY_FED, **kw}})


def drop_out(institution: int, at_round: int):
    """A Flower mod: institution ``institution`` fails during the train message of round ``at_round``."""

    def mod(message: Message, context, call_next):
        is_train = message.metadata.message_type == "train"
        if is_train and int(context.node_config["partition-id"]) == institution and int(message.content["config"]["round"]) == at_round:
            raise ConnectionError(f"institution {institution} lost its connection")
        return call_next(message, context)

    return mod


def truncate_reply(institution: int):
    """A Flower mod: institution ``institution``'s sealed update is cut in half on the way out."""

    def mod(message: Message, context, call_next):
        reply = call_next(message, context)
        if message.metadata.message_type == "train" and int(context.node_config["partition-id"]) == institution:
            array = reply.content["sealed"]["data"]
            reply.content["sealed"]["data"] = type(array)(array.numpy()[: array.numpy().size // 2].copy())
        return reply

    return mod


def test_dropout_mid_round_completes_with_the_quorum(tiny, tmp_path):
    _, params = tiny
    result = stage.run_mode("plaintext", params, tmp_path, progress=False, mods=[drop_out(2, at_round=2)])
    assert result.rounds[0]["accepted"] == ["institution 0", "institution 1", "institution 2", "institution 3"]
    assert result.rounds[1]["accepted"] == ["institution 0", "institution 1", "institution 3"]
    assert "lost its connection" in result.rounds[1]["rejected"]["institution 2"]
    assert np.isfinite(result.rounds[1]["accuracy"])


def test_dropout_below_the_quorum_fails_naming_who_is_missing(tiny, tmp_path):
    _, params = tiny
    strict = with_federated(params, min_institutions=4)
    with pytest.raises(QuorumError, match="fewer than federated.min_institutions = 4.*institution 1: dropped out"):
        stage.run_mode("plaintext", strict, tmp_path, progress=False, mods=[drop_out(1, at_round=1)])


def shipped_updates(seen: dict):
    """A Flower mod: records each institution's plaintext update ``[w * update, w]`` as it leaves."""

    def mod(message: Message, context, call_next):
        reply = call_next(message, context)
        if message.metadata.message_type == "train":
            packed = np.frombuffer(reply.content["sealed"]["data"].numpy().tobytes(), np.float32).astype(np.float64)
            seen[int(context.node_config["partition-id"])] = packed[:-1] / packed[-1]
        return reply

    return mod


def test_dp_clips_every_shipped_update_in_a_real_round_and_reports_epsilon(tiny, tmp_path):
    _, params = tiny
    seen = {}
    noised = with_federated(params, rounds=1, dp={"noise_multiplier": 1e-4, "clip": 0.05})
    result = stage.run_mode("plaintext", noised, tmp_path, progress=False, mods=[shipped_updates(seen)])
    assert sorted(seen) == [0, 1, 2, 3]
    noise = 1e-4 * 0.05 * np.sqrt(len(seen[0]))  # the noise's norm; a local epoch moves the weights far more than 0.05
    for update in seen.values():
        assert 0.05 - noise < np.linalg.norm(update) < 0.05 + noise
    record = stage.mode_metrics("plaintext", result, stage.local.dataset(noised), noised.federated.dp)["dp_epsilon"]
    assert record["noise_multiplier"] == 1e-4 and len(record["cumulative"]) == 1 and record["per_round"] > 1e6
    assert np.isfinite(result.rounds[0]["accuracy"])


@pytest.mark.slow
def test_truncated_ciphertext_in_a_real_blind_round_is_rejected_by_name(tiny, tmp_path):
    _, params = tiny
    result = stage.run_mode("blind", with_federated(params, rounds=1), tmp_path, progress=False, mods=[truncate_reply(0)])
    row = result.rounds[0]
    assert row["accepted"] == ["institution 1", "institution 2", "institution 3"]
    assert "institution 0 is corrupted or truncated" in row["rejected"]["institution 0"]
    assert result.server_holds_secret_key is False and row["bytes_sent"] > 10 * row["bytes_plaintext"] / 3


@pytest.mark.slow
def test_stage_writes_the_metrics_contract_and_loadable_models(tiny):
    root, params = tiny
    out = stage.run(params, progress=False)
    metrics = json.loads((root / "r/metrics/federated.json").read_text())
    keys = {"accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "threshold"}
    for mode in ("third_party", "blind", "plaintext", "centralized"):
        assert set(metrics[mode]["verification"]) == keys and len(metrics[mode]["accuracy"]) == 2
        model = load_model(root / f"a/models/federated_{mode}.pt")
        assert model.meta["verification"] == metrics[mode]["verification"]
        images = data_stage_images(params)
        assert np.allclose(embed_images(model, images), embed_images(out["models"][mode], images), atol=1e-5)
    for mode in ("third_party", "blind"):
        for key in ("encrypt_seconds", "aggregate_seconds", "decrypt_seconds", "bytes_sent", "bytes_plaintext"):
            assert len(metrics[mode][key]) == 2 and min(metrics[mode][key]) > 0
    assert metrics["third_party"]["server_holds_secret_key"] is True and metrics["blind"]["server_holds_secret_key"] is False
    for mode in ("third_party", "blind", "plaintext"):
        assert len(metrics[mode]["round_wall_seconds"]) == 2 and min(metrics[mode]["round_wall_seconds"]) > 0
        wire = metrics[mode]["bytes_on_wire"]  # round 1 also moves the key exchange and the preset model
        assert wire[0] > wire[1] >= metrics[mode]["bytes_sent"][1] > 0
        assert metrics[mode]["dp_epsilon"] is None and metrics[mode]["refused"] == metrics[mode]["resynced"] == [{}, {}]
    # same seeds, same preset parameters: CKKS error (~1e-8) must not move accuracy by more than a pair or two
    assert abs(metrics["blind"]["accuracy"][-1] - metrics["plaintext"]["accuracy"][-1]) <= 0.05
    assert json.loads((root / "r/plots/federated_rounds.json").read_text())[1]["round"] == 2
    privacy = metrics["privacy"]
    assert privacy["attacked_mode"] == "plaintext" and privacy["psnr_plaintext"] > 0 and 0 <= privacy["reidentified_plaintext"] <= 1
    assert privacy["blind_server"]["context_has_secret_key"] is False and privacy["blind_server"]["decrypted"] is False
    assert out["privacy"]["reconstructions"].shape == out["privacy"]["originals"].shape == (8, 3, 32, 32)
    # the attacked update is a real round of local training: 1 epoch over 4 x 2 faces, AdamW
    assert (privacy["faces"], privacy["steps"], privacy["batch_size"], privacy["optimizer"]) == (8, 2, 4, "adamw")
    assert metrics["keys"]["blind_server_holds_secret_key"] is False and metrics["keys"]["third_party_holds_secret_key"] is True


def data_stage_images(params):
    from benchmark.data.dataset import load_dataset

    return load_dataset(params).images[:6]


@pytest.mark.slow
def test_federated_notebook_runs_and_shows_its_figures(tiny, tmp_path):
    import papermill

    root, params = tiny
    raw = config.as_dict(with_federated(params, rounds=1, modes="blind-plaintext-centralized"))
    raw["paths"] = {"artifacts": str(root / "a"), "reports": str(tmp_path / "r")}
    injected = {k: raw[k] for k in ("seed", "device", "paths", "data", "federated")}
    out = tmp_path / "04_federated.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks/04_federated.ipynb"), str(out), parameters=injected, cwd=str(ROOT), progress_bar=False)
    figures = sorted(p.name for p in (tmp_path / "r/figures/federated").glob("*.png"))
    assert figures == ["accuracy_per_round.png", "cost_per_round.png", "reconstructions.png"]
    executed = json.loads(out.read_text())
    images = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3
    metrics = json.loads((tmp_path / "r/metrics/federated.json").read_text())
    assert set(metrics) >= {"blind", "plaintext", "centralized", "privacy", "targets", "keys"}


def test_quorum_above_the_number_of_institutions_is_a_config_error(tiny):
    _, params = tiny
    with pytest.raises(config.ConfigError, match="'federated.min_institutions' = 5 exceeds 'data.protocol.institutions' = 4"):
        stage.run(with_federated(params, min_institutions=5), progress=False)


def test_institutions_keep_their_own_disjoint_identities(tiny):
    from benchmark.federated import local

    _, params = tiny
    data = local.dataset(params)
    parts = [local.institution_images(data, i, "all") for i in range(4)]
    ids = [set(data.labels[p].tolist()) for p in parts]
    assert all(not (ids[i] & ids[j]) for i in range(4) for j in range(i + 1, 4))
    labelled = local.institution_images(data, 0, "labelled")
    assert set(labelled) <= set(parts[0]) and set(labelled) <= set(data.protocol.labelled.tolist())
    assert np.array_equal(local.union_images(data, "all"), np.sort(np.concatenate(parts)))


def test_the_momentum_sweep_scores_each_momentum_and_the_centralized_reference_on_validation_pairs(tiny, tmp_path, capsys):
    # Prepare
    _, params = tiny
    params_file, out = tmp_path / "params.yaml", tmp_path / "sweep.json"
    params_file.write_text(yaml.safe_dump(config.as_dict(params)))
    # Execute
    code = cli.main(["fl-sweep", "--params", str(params_file), "--momenta", "0,0.9", "--out", str(out)])
    # Assert
    assert code == 0
    sweep = json.loads(out.read_text())
    rows = sweep["rows"]
    assert [r["server_momentum"] for r in rows] == [0.0, 0.9] and sweep["val_pairs"] > 0
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["seconds"] > 0 for r in rows)
    assert 0.0 <= sweep["centralized"]["val_accuracy"] <= 1.0
    assert sweep["choice"] == max(rows, key=lambda r: (r["val_accuracy"], -r["server_momentum"]))["server_momentum"]
    assert sweep["federated"]["rounds"] == 2 and sweep["command"].startswith("facebench fl-sweep")
    assert f"chosen {sweep['choice']:g} on {sweep['val_pairs']} validation pairs" in capsys.readouterr().out
    assert cli.main(["fl-sweep", "--params", str(params_file), "--momenta", "0,1"]) == 2
    assert "--momenta '0,1': server momenta must be in [0, 1)" in capsys.readouterr().err
