"""An institution that misses a round's sum, or restarts without its model, is named and resynced in real rounds."""

import json

import numpy as np
import pytest
import yaml

from benchmark import config
from benchmark.data import stage as data_stage
from benchmark.federated import sync
from benchmark.federated.client_app import make_client_app
from benchmark.federated.credentials import write_credentials
from benchmark.federated.grid import run_local
from benchmark.federated.server_app import make_server_app

FED = {"rounds": 3, "local_epochs": 1, "batch_size": 16, "embedding_dim": 16, "min_institutions": 3}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("fedsync")
    raw = {
        "paths": {"artifacts": str(root / "a"), "reports": str(root / "r")},
        "data": {"image_size": 32, "synthetic": {"identities": 24, "images_per_identity": 4, "video_frames": 4},
                 "protocol": {"folds": 2, "pairs_per_fold": 10, "institutions": 4}},
        "federated": FED,
    }
    params = config.build(config.Params, raw)
    data_stage.run(params)
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(config.as_dict(params)))
    return params_file, write_credentials(root / "credentials", 4, params.federated.ckks)


def federate(tiny, tmp_path, mode, mods):
    """Three real rounds in ``mode``; (the rounds' rows, every institution's state after the run)."""
    params_file, creds = tiny
    out = tmp_path / "history.json"
    grid = run_local(make_server_app(progress=False), make_client_app(mods),
                     [creds.node_config(i, mode) for i in range(4)], creds.run_config(params_file, mode, out))
    return json.loads(out.read_text())["rounds"], [c.state for c in grid.contexts.values()]


def at(message_type, institution, server_round, act):
    """A Flower mod: ``act(context, call_next, message)`` replaces the call for ``institution``'s ``message_type``
    message of ``server_round``."""

    def mod(message, context, call_next):
        mine = (message.metadata.message_type == message_type and int(context.node_config["partition-id"]) == institution
                and int(message.content["config"]["round"]) == server_round)
        return act(context, call_next, message) if mine else call_next(message, context)

    return mod


def lose_connection(context, call_next, message):
    raise ConnectionError("lost its connection before applying the sum")


def restart_after(context, call_next, message):
    """Answer, then restart: the SuperNode comes back with an empty state."""
    reply = call_next(message, context)
    for key in list(context.state):
        del context.state[key]
    return reply


def assert_all_hold_one_model(states, rounds):
    held = [(int(s["fb.sync"]["round"]), str(s["fb.sync"]["chain"])) for s in states]
    assert held == [held[0]] * 4 and held[0][0] == rounds
    vectors = [s["fb.global"]["vector"].numpy() for s in states]
    assert all(np.array_equal(v, vectors[0]) for v in vectors)


def test_an_institution_that_missed_a_sum_replays_it_from_the_server_and_trains_in_sync(tiny, tmp_path):
    rows, states = federate(tiny, tmp_path, "blind", [at("evaluate", 2, 1, lose_connection)])
    assert "lost its connection" in rows[0]["refused"]["institution 2"]
    assert rows[1]["resynced"] == {"institution 2": {"preset_model": False, "key_exchange": False, "sums": [1]}}
    assert "institution 2" in rows[1]["accepted"] and rows[2]["resynced"] == {}
    assert all(len(r["accepted"]) == 4 for r in rows[1:]) and all(np.isfinite(r["accuracy"]) for r in rows)
    assert_all_hold_one_model(states, 3)


def test_a_restarted_supernode_is_named_then_gets_the_setup_the_preset_model_and_every_sum(tiny, tmp_path):
    rows, states = federate(tiny, tmp_path, "third_party", [at("evaluate", 1, 1, restart_after)])
    assert "StaleModel" in rows[1]["rejected"]["institution 1"]
    assert "institution 1 holds no global model or key exchange (a restarted SuperNode?)" in rows[1]["rejected"]["institution 1"]
    assert "institution 1 holds the model of round -1" in rows[1]["refused"]["institution 1"]
    assert rows[2]["resynced"] == {"institution 1": {"preset_model": True, "key_exchange": True, "sums": [1, 2]}}
    assert "institution 1" in rows[2]["accepted"] and len(rows[1]["accepted"]) == 3
    assert rows[2]["bytes_on_wire"] > rows[1]["bytes_on_wire"] + 2 * rows[1]["bytes_received"] / 3
    assert_all_hold_one_model(states, 3)


def test_an_institution_on_another_models_history_refuses_to_train_naming_both(tiny, tmp_path):
    def other_history(context, call_next, message):
        message.content["sync"]["chain"] = sync.next_chain(str(message.content["sync"]["chain"]), "forged")
        return call_next(message, context)

    rows, _ = federate(tiny, tmp_path, "plaintext", [at("train", 3, 2, other_history)])
    assert "institution 3 holds the model of round 1 (chain " in rows[1]["rejected"]["institution 3"]
    assert "but round 2 trains from the model of round 1 (chain " in rows[1]["rejected"]["institution 3"]


def test_the_chain_names_a_model_by_its_history_and_stale_errors_are_recognised_in_both_formats():
    start = sync.initial_chain(np.arange(4, dtype=np.float32))
    assert start == sync.initial_chain(np.arange(4, dtype=np.float64)) != sync.initial_chain(np.ones(4))
    assert sync.next_chain(start, "a") == sync.next_chain(start, "a") != sync.next_chain(start, "b")
    assert sync.next_chain(sync.next_chain(start, "a"), "b") != sync.next_chain(sync.next_chain(start, "b"), "a")
    assert sync.is_stale("StaleModel: institution 1 holds no global model")  # the in-process grid
    assert sync.is_stale("<class 'benchmark.federated.sync.StaleModel'>:<'institution 1 ...'>")  # a SuperNode
    assert not sync.is_stale("ConnectionError: lost its connection")
