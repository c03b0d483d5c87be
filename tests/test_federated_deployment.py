"""Flower's deployment mode: a real SuperLink and one SuperNode per institution as separate processes on
127.0.0.1 run the federation's ServerApp and ClientApps (3 institutions, 1 round, tiny model, each SuperNode reading
only its own data file) over TLS with authenticated SuperNodes, refuse a SuperNode whose key was not registered, then
stop; a SuperNode restarted between rounds is named while it is away and rejoins from the preset model and every
sum."""

import json
import re
import socket
import subprocess
import threading
import time

import psutil
import pytest
import yaml

from benchmark import cli, config
from benchmark.data import stage as data_stage
from benchmark.federated.credentials import write_credentials
from benchmark.federated import local
from benchmark.federated.deployment import LocalDeployment, free_port
from benchmark.federated.partition import write_partitions
from benchmark.federated.stage import add_deployment
from benchmark.federated.wire import CountingRelay
from benchmark.federated.tls import write_tls


def tiny_federation(tmp_path, institutions, rounds, mode):
    """A tiny data stage, its params file, credentials and a deployment of ``institutions`` SuperNodes, each given
    its own data file."""
    raw = {
        "paths": {"artifacts": str(tmp_path / "a"), "reports": str(tmp_path / "r")},
        "data": {
            "image_size": 32,
            "synthetic": {"identities": 4 * institutions + 4, "images_per_identity": 4, "video_frames": 4},
            "protocol": {"folds": 2, "pairs_per_fold": 10, "institutions": institutions},
        },
        "federated": {"rounds": rounds, "local_epochs": 1, "batch_size": 16, "embedding_dim": 8, "min_institutions": 3},
    }
    params = config.build(config.Params, raw)
    data_stage.run(params)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(config.as_dict(params)))
    creds = write_credentials(tmp_path / "credentials", institutions, params.federated.ckks)
    files = write_partitions(local.dataset(params), institutions, tmp_path / "institutions")
    return params_file, LocalDeployment(tmp_path, creds, mode, files)


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def stranger_exit(deployment, tmp_path):
    """(exit code, log) of a SuperNode whose key was never registered, given 90 s to connect (TLS with the CA)."""
    key = write_tls(tmp_path / "stranger", 1).node_keys[0][0]
    log = tmp_path / "stranger.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([deployment.bin["flower-supernode"], "--root-certificates", str(deployment.tls.ca_certificate),
                                 "--auth-supernode-private-key", str(key), "--superlink", f"127.0.0.1:{deployment.port}",
                                 "--port", str(free_port()), "--max-retries", "1", "--node-config", "partition-id=0"],
                                stdout=out, stderr=subprocess.STDOUT, env=deployment.env)
    try:
        code = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = None
    return code, log.read_text()


@pytest.mark.slow
def test_blind_federation_runs_on_a_superlink_and_three_supernodes(tmp_path):
    params_file, deployment = tiny_federation(tmp_path, 3, 1, "blind")
    out, pooled = tmp_path / "history.json", tmp_path / "a" / "data" / "faces.npz"
    hidden = pooled.rename(pooled.with_suffix(".hidden"))  # each SuperNode reads its own file, none the pooled one
    try:
        with deployment:
            assert len(deployment.processes) == 4 and all(p.poll() is None for p in deployment.processes)
            deployment.run(params_file, out, timeout=420)
            started = deployment.descendants()
            assert len(started) >= 7  # SuperLink, 3 SuperNodes and the SuperExecs they started
            link = " ".join(deployment.processes[0].args)
            assert "--ssl-certfile" in link and "--enable-supernode-auth" in link and "--insecure" not in link
            stranger = stranger_exit(deployment, tmp_path)
    finally:
        deployment.stop()
        hidden.rename(pooled)
    assert stranger[0] not in (None, 0) and "Failed to activate SuperNode" in stranger[1]
    history = json.loads(out.read_text())
    assert history["mode"] == "blind" and history["server_holds_secret_key"] is False
    row = history["rounds"][0]
    assert sorted(row["accepted"]) == ["institution 0", "institution 1", "institution 2"] and not row["rejected"]
    assert 0.0 <= row["accuracy"] <= 1.0 and row["bytes_sent"] > row["bytes_plaintext"] > 0
    # the links carried the serialized payloads the server counted, give or take framing and the transport's compression
    assert 0.9 < deployment.relay.between(row["started_at"], row["ended_at"]) / row["bytes_on_wire"] < 1.1
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]  # all stopped


@pytest.mark.slow
def test_a_supernode_restarted_between_rounds_is_named_while_away_then_rejoins_from_everything(tmp_path):
    # Prepare: 4 institutions in third_party mode, 3 rounds, a quorum of 3
    params_file, deployment = tiny_federation(tmp_path, 4, 3, "third_party")
    out, log = tmp_path / "history.json", tmp_path / "supernode1.log"
    answered_round_1 = re.compile(r"ROUND 1\][^\n]*\n[^\n]*Sending: evaluate message[^\n]*\n[^\n]*Sent successfully")

    def restart_after_round_1():  # institution 1's machine reboots once it has applied round 1's sum
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and not answered_round_1.search(log.read_text(errors="replace")):
            time.sleep(0.5)
        deployment.restart(1)

    # Execute
    try:
        with deployment:
            watcher = threading.Thread(target=restart_after_round_1)
            watcher.start()
            deployment.run(params_file, out, timeout=540)
            watcher.join()
    finally:
        deployment.stop()
    # Assert: named in every round it missed, resynced from the preset model and every earlier sum, back by round 3
    rows = json.loads(out.read_text())["rounds"]
    assert "Sending: evaluate" in log.read_text() and log.read_text().count("Starting Flower SuperNode") == 2
    for row in rows:
        assert len(row["accepted"]) >= 3
        assert "institution 1" in row["accepted"] or "institution 1" in row["rejected"]
    back = next(r["round"] for r in rows if "institution 1" in r["resynced"])
    assert rows[back - 1]["resynced"]["institution 1"] == {"preset_model": True, "key_exchange": True,
                                                          "sums": list(range(1, back))}
    assert "institution 1" in rows[back - 1]["accepted"] and "institution 1" in rows[-1]["accepted"]
    assert all("institution 1" in r["rejected"] for r in rows[1:back - 1])  # the rounds it was away


def test_the_relay_counts_every_byte_both_ways_and_when():
    # Prepare: an echo server behind the relay
    server = socket.create_server(("127.0.0.1", 0))

    def echo():
        conn, _ = server.accept()
        while data := conn.recv(4096):
            conn.sendall(data)
        conn.close()

    threading.Thread(target=echo, daemon=True).start()
    # Execute: 100,000 bytes out, the same back
    with CountingRelay(server.getsockname()[1]) as relay:
        start = time.time()
        with socket.create_connection(("127.0.0.1", relay.port)) as client:
            client.sendall(b"x" * 100_000)
            got = b""
            while len(got) < 100_000:
                got += client.recv(65536)
        end = time.time()
        time.sleep(0.2)
        # Assert
        assert got == b"x" * 100_000 and relay.sent == relay.received == 100_000 and relay.total() == 200_000
        assert relay.between(start, end + 0.2) == 200_000 and relay.between(end + 1, end + 2) == 0
    server.close()


def test_the_stage_adds_the_deployment_measurement_to_each_mode_it_measured(tmp_path):
    params = config.build(config.Params, {"paths": {"federated_deployment": str(tmp_path / "dep.json")}})
    metrics = {"blind": {}, "plaintext": {}}
    add_deployment(metrics, params)  # no measurement: nothing added
    assert metrics == {"blind": {}, "plaintext": {}}
    measured = {"command": "facebench fl-deploy", "date": "2026-12-07", "federated": config.as_dict(params.federated),
                "modes": {"blind": {"round_wall_seconds": [50.0], "bytes_on_wire": [61_000_000]}}}
    (tmp_path / "dep.json").write_text(json.dumps(measured))
    add_deployment(metrics, params)
    assert metrics["blind"]["deployment"]["bytes_on_wire"] == [61_000_000] and "deployment" not in metrics["plaintext"]
    assert metrics["blind"]["deployment"]["same_settings"] is True and metrics["blind"]["deployment"]["date"] == "2026-12-07"
    measured["federated"]["rounds"] += 1
    (tmp_path / "dep.json").write_text(json.dumps(measured))
    add_deployment(metrics, params)
    assert metrics["blind"]["deployment"]["same_settings"] is False


def test_fl_deploy_refuses_an_unknown_mode_in_one_line(capsys):
    assert cli.main(["fl-deploy", "--modes", "third_party,secret"]) == 2
    assert "--modes 'third_party,secret'" in capsys.readouterr().err
