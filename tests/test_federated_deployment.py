"""Flower's deployment mode: a real SuperLink and one SuperNode per institution as separate processes on
127.0.0.1 run the federation's ServerApp and ClientApps (2 institutions, 1 round, tiny model), then stop."""

import json

import psutil
import pytest
import yaml

from benchmark import config
from benchmark.data import stage as data_stage
from benchmark.federated import ckks
from benchmark.federated.deployment import LocalDeployment, free_port


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.slow
def test_blind_federation_runs_on_a_superlink_and_two_supernodes(tmp_path):
    raw = {
        "paths": {"artifacts": str(tmp_path / "a"), "reports": str(tmp_path / "r")},
        "data": {
            "image_size": 32,
            "synthetic": {"identities": 16, "images_per_identity": 4, "video_frames": 4},
            "protocol": {"folds": 2, "pairs_per_fold": 10, "institutions": 2},
        },
        "federated": {"rounds": 1, "local_epochs": 1, "batch_size": 16, "embedding_dim": 8, "min_institutions": 2},
    }
    params = config.build(config.Params, raw)
    data_stage.run(params)
    params_file, keys, out = tmp_path / "params.yaml", tmp_path / "keys.bin", tmp_path / "history.json"
    params_file.write_text(yaml.safe_dump(config.as_dict(params)))
    ckks.write_key_pair(str(keys), params.federated.ckks)
    deployment = LocalDeployment(tmp_path, institutions=2, keys=keys)
    try:
        with deployment:
            assert len(deployment.processes) == 3 and all(p.poll() is None for p in deployment.processes)
            deployment.run(params_file, "blind", out, timeout=420)
            started = deployment.descendants()
            assert len(started) >= 5  # SuperLink, 2 SuperNodes and the SuperExecs they started
    finally:
        deployment.stop()
    history = json.loads(out.read_text())
    assert history["mode"] == "blind" and history["server_holds_secret_key"] is False
    row = history["rounds"][0]
    assert sorted(row["accepted"]) == ["institution 0", "institution 1"] and not row["rejected"]
    assert 0.0 <= row["accuracy"] <= 1.0 and row["bytes_sent"] > row["bytes_plaintext"] > 0
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]  # all stopped
