"""Security of the federation: no downgrade, no subtraction quorum, signed payloads; each fault in a real
in-process Flower round names who and why; an institution that misses a sum or restarts without its model is named,
then resynced; an institution given its own data file reads no other's faces."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from flwr.app import ConfigRecord

from benchmark import config
from benchmark.config import CkksConfig
from benchmark.data import stage as data_stage
from benchmark.federated import ckks, local, stage, sync
from benchmark.federated.aggregation import create_aggregation
from benchmark.federated.ckks import CiphertextError, Sealed
from benchmark.federated.client_app import make_client_app
from benchmark.federated.credentials import write_credentials
from benchmark.federated.encryption import RefusedRequest, check_request, create_workflow, plain_seal
from benchmark.federated.grid import run_local
from benchmark.federated.identity import Roster, Signer, write_identities
from benchmark.federated.messages import put_sealed
from benchmark.federated.partition import load_partition, write_partitions
from benchmark.federated.server_app import KnowledgeFederation, QuorumError, make_server_app

CFG = CkksConfig()
FED = {"rounds": 1, "local_epochs": 1, "batch_size": 16, "embedding_dim": 16, "min_institutions": 3}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("fedsec")
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
    return params, params_file, write_credentials(root / "credentials", 4, params.federated.ckks)


def federate(tiny, tmp_path, node_mode, server_mode=None, run_changes=None, mods=None):
    """One real round: SuperNodes configured for ``node_mode``, a server run for ``server_mode``; the history."""
    _, params_file, creds = tiny
    out = tmp_path / "history.json"
    run = {**creds.run_config(params_file, server_mode or node_mode, out), **(run_changes or {})}
    nodes = [creds.node_config(i, node_mode) for i in range(4)]
    run_local(make_server_app(progress=False), make_client_app(mods), nodes, run)
    return json.loads(out.read_text())["rounds"][0]


def on(message_type, institution, change, incoming=False):
    """A Flower mod: ``change(content)`` on the incoming message (``incoming``) or the reply of ``institution``."""

    def mod(message, context, call_next):
        mine = message.metadata.message_type == message_type and int(context.node_config["partition-id"]) == institution
        if mine and incoming:
            change(message.content)
        reply = call_next(message, context)
        if mine and not incoming:
            change(reply.content)
        return reply

    return mod


# --- no downgrade ------------------------------------------------------------------------------------------------

def test_institutions_refuse_a_plaintext_server_in_a_real_round(tiny, tmp_path):
    with pytest.raises(QuorumError, match="key exchange: 0 of 4 institutions answered.*institution 0 is configured for "
                                          "mode 'blind' \\(its node config\\), but the server asked for 'plaintext'"):
        federate(tiny, tmp_path, "blind", server_mode="plaintext")


def test_institutions_refuse_a_third_party_key_they_were_not_given(tiny, tmp_path):
    _, _, creds = tiny
    foreign = tmp_path / "foreign_keys.bin"
    ckks.write_key_pair(str(foreign), CFG)
    found = ckks.key_id(ckks.load_context(foreign.read_bytes()))
    with pytest.raises(QuorumError, match=f"trusts the third party's key {creds.third_party_key_id} \\(its node config\\), "
                                          f"but the server asked it to encrypt for key {found}"):
        federate(tiny, tmp_path, "third_party", run_changes={"third-party-keys": str(foreign)})


def test_a_blind_server_slipping_in_its_own_key_is_refused(tiny, tmp_path):
    own = ckks.public_bytes(ckks.key_pair(CFG))

    def slip(content):
        content["keys"] = ConfigRecord({"mode": "blind", "recipient": own})

    mods = [on("query", i, slip, incoming=True) for i in range(4)]
    with pytest.raises(QuorumError, match="in mode 'blind' encrypts for no one but the institutions, but the server "
                                          "asked it to encrypt for key"):
        federate(tiny, tmp_path, "blind", mods=mods)


@pytest.mark.parametrize("own, asked, recipient, fragment", [
    ("blind", "plaintext", None, "configured for mode 'blind'"),
    ("third_party", "blind", None, "configured for mode 'third_party'"),
    ("third_party", "third_party", None, "asked it to encrypt for key (none)"),
    ("plaintext", "plaintext", b"key", "in mode 'plaintext' encrypts for no one"),
])
def test_check_request_refuses_any_other_mode_or_key(own, asked, recipient, fragment):
    recipient = ckks.public_bytes(ckks.key_pair(CFG)) if recipient else None
    with pytest.raises(RefusedRequest, match=fragment.replace("(", "\\(").replace(")", "\\)")) as err:
        check_request("institution 3", own, asked, recipient, "0123456789abcdef")
    assert "institution 3" in str(err.value) and "\n" not in str(err.value)


def test_check_request_accepts_the_agreed_mode_and_key():
    keys = ckks.key_pair(CFG)
    check_request("institution 0", "third_party", "third_party", ckks.public_bytes(keys), ckks.key_id(keys))
    check_request("institution 0", "blind", "blind", None, "")


# --- no subtraction ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("modes", ["third_party-plaintext", "blind"])
def test_a_quorum_of_two_in_an_encrypted_mode_is_a_config_error(modes):
    with pytest.raises(config.ConfigError, match="'federated.min_institutions' = 2 with the encrypted mode.*subtracts its "
                                                 "own reads the other's; set it to 3 or more") as err:
        config.build(config.Params, {"federated": {"modes": modes, "min_institutions": 2}})
    assert "\n" not in str(err.value)


def test_plaintext_alone_may_run_with_a_quorum_of_two():
    params = config.build(config.Params, {"federated": {"modes": "plaintext-centralized", "min_institutions": 2}})
    assert params.federated.min_institutions == 2


def test_the_server_refuses_a_quorum_of_two_in_an_encrypted_mode(tmp_path):
    pems, roster = write_identities(tmp_path, ["the server"])
    with pytest.raises(ValueError, match="quorum of 2 in the encrypted mode blind"):
        KnowledgeFederation(create_workflow("blind", CFG), create_aggregation("fedavg"), 2,
                            Signer("the server", pems["the server"]), Roster(roster), progress=False)


# --- signatures ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def parties(tmp_path_factory):
    return write_identities(tmp_path_factory.mktemp("ids"), ["institution 0", "institution 1", "the server"])


SEALED = Sealed(b"\x01\x02", ckks.digest(b"\x01\x02"), "abcd", 2)


def test_a_signed_payload_verifies_and_any_change_fails_naming_the_sender(parties):
    pems, path = parties
    roster, signer = Roster(path), Signer("institution 0", pems["institution 0"])
    signature = signer.sign("update", 2, SEALED, 30.0)
    roster.verify("update", 2, "institution 0", SEALED, 30.0, signature)
    changed = [("update", 2, "institution 0", SEALED, 31.0),  # weight
               ("update", 3, "institution 0", SEALED, 30.0),  # replayed in another round
               ("sum", 2, "institution 0", SEALED, 30.0),  # passed off as another kind
               ("update", 2, "institution 1", SEALED, 30.0),  # claimed by another party
               ("update", 2, "institution 0", Sealed(SEALED.data, "00" * 32, "abcd", 2), 30.0)]  # digest
    for kind, rnd, sender, sealed, weight in changed:
        with pytest.raises(CiphertextError, match=f"{kind} from {sender}: the signature does not verify"):
            roster.verify(kind, rnd, sender, sealed, weight, signature)
    with pytest.raises(CiphertextError, match="update from institution 0 carries no signature"):
        roster.verify("update", 2, "institution 0", SEALED, 30.0, None)
    with pytest.raises(CiphertextError, match="update from institution 7: not a party of this federation"):
        roster.verify("update", 2, "institution 7", SEALED, 30.0, signature)


def test_signing_keys_are_private_to_their_owner(parties):
    pems, roster = parties
    assert all(p.stat().st_mode & 0o077 == 0 for p in pems.values())
    assert set(json.loads(roster.read_text())) == {"institution 0", "institution 1", "the server"}


def test_an_unsigned_update_in_a_real_round_is_rejected_naming_its_sender(tiny, tmp_path):
    def unsign(content):
        del content["seal"]["signature"]

    row = federate(tiny, tmp_path, "plaintext", mods=[on("train", 1, unsign)])
    assert row["accepted"] == ["institution 0", "institution 2", "institution 3"]
    assert "update from institution 1 carries no signature" in row["rejected"]["institution 1"]
    assert np.isfinite(row["accuracy"])


def test_an_altered_blind_update_is_rejected_naming_its_sender(tiny, tmp_path):
    def inflate(content):
        content["seal"]["weight"] = float(content["seal"]["weight"]) * 2

    row = federate(tiny, tmp_path, "blind", mods=[on("train", 2, inflate)])
    assert row["accepted"] == ["institution 0", "institution 1", "institution 3"]
    assert "update from institution 2: the signature does not verify" in row["rejected"]["institution 2"]


def test_a_signed_update_of_the_wrong_length_is_rejected_naming_its_sender(tiny, tmp_path):
    def shorten(message, context, call_next):  # institution 0 packs 10 values too few, and signs what it sends
        reply = call_next(message, context)
        if message.metadata.message_type == "train" and int(context.node_config["partition-id"]) == 0:
            seal = reply.content["seal"]
            short = plain_seal(reply.content["sealed"]["data"].numpy().view(np.float32)[10:])
            put_sealed(reply.content, short, float(seal["weight"]), Signer("institution 0", Path(context.node_config["signing-key"])),
                       "update", int(message.content["config"]["round"]))
        return reply

    row = federate(tiny, tmp_path, "plaintext", mods=[shorten])
    assert "institution 0" not in row["accepted"] and len(row["accepted"]) == 3
    found = re.fullmatch(r"update from institution 0 holds (\d+) values, but the shared network packs into (\d+) "
                         r"\(its parameters and the weight\)", row["rejected"]["institution 0"])
    assert found and int(found[2]) - int(found[1]) == 10


def test_a_malformed_reply_is_rejected_naming_its_sender(tiny, tmp_path):
    def strip(content):
        del content["sealed"]

    row = federate(tiny, tmp_path, "blind", mods=[on("train", 3, strip)])
    assert row["rejected"]["institution 3"] == "the message from institution 3 carries no sealed update of round 1"
    assert len(row["accepted"]) == 3


def test_an_altered_sum_is_refused_by_the_institution_and_recorded(tiny, tmp_path):
    def alter(content):
        content["seal"]["weight"] = float(content["seal"]["weight"]) + 1

    row = federate(tiny, tmp_path, "plaintext", mods=[on("evaluate", 3, alter, incoming=True)])
    assert list(row["refused"]) == ["institution 3"]
    assert "sum from the server: the signature does not verify" in row["refused"]["institution 3"]


def test_a_stage_run_signs_everything_and_accepts_every_honest_institution(tiny, tmp_path):
    params, _, creds = tiny
    result = stage.run_mode("third_party", params, tmp_path, progress=False, creds=creds)
    row = result.rounds[0]
    assert len(row["accepted"]) == 4 and not row["rejected"] and not row["refused"] and np.isfinite(row["accuracy"])


def test_tls_files_chain_to_their_ca_and_name_the_superlink(tmp_path):
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

    from benchmark.federated.tls import write_tls

    files = write_tls(tmp_path, 2)
    ca = x509.load_pem_x509_certificate(files.ca_certificate.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_certificate.read_bytes())
    ca.public_key().verify(server.signature, server.tbs_certificate_bytes, ec.ECDSA(server.signature_hash_algorithm))
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    for private, public in files.node_keys:
        key = load_ssh_private_key(private.read_bytes(), None)
        assert key.public_key().public_numbers() == load_ssh_public_key(public.read_bytes()).public_numbers()
        assert private.stat().st_mode & 0o077 == 0
    assert files.server_key.stat().st_mode & 0o077 == 0


# --- a missed round, a restarted SuperNode: named, then resynced (benchmark/federated/sync.py) ------------------

@pytest.fixture(scope="module")
def three_rounds(tiny):
    """The tiny federation's params file with 3 rounds, and its credentials."""
    params, params_file, creds = tiny
    raw = config.as_dict(params)
    raw["federated"]["rounds"] = 3
    longer = params_file.with_name("params_3_rounds.yaml")
    longer.write_text(yaml.safe_dump(raw))
    return longer, creds


def federate_rounds(three_rounds, tmp_path, mode, mods):
    """Three real rounds in ``mode``; (the rounds' rows, every institution's state after the run)."""
    params_file, creds = three_rounds
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


def test_an_institution_that_missed_a_sum_replays_it_from_the_server_and_trains_in_sync(three_rounds, tmp_path):
    rows, states = federate_rounds(three_rounds, tmp_path, "blind", [at("evaluate", 2, 1, lose_connection)])
    assert "lost its connection" in rows[0]["refused"]["institution 2"]
    assert rows[1]["resynced"] == {"institution 2": {"preset_model": False, "key_exchange": False, "sums": [1]}}
    assert "institution 2" in rows[1]["accepted"] and rows[2]["resynced"] == {}
    assert all(len(r["accepted"]) == 4 for r in rows[1:]) and all(np.isfinite(r["accuracy"]) for r in rows)
    assert_all_hold_one_model(states, 3)


def test_a_restarted_supernode_is_named_then_gets_the_setup_the_preset_model_and_every_sum(three_rounds, tmp_path):
    rows, states = federate_rounds(three_rounds, tmp_path, "third_party", [at("evaluate", 1, 1, restart_after)])
    assert "StaleModel" in rows[1]["rejected"]["institution 1"]
    assert "institution 1 holds no global model or key exchange (a restarted SuperNode?)" in rows[1]["rejected"]["institution 1"]
    assert "institution 1 holds the model of round -1" in rows[1]["refused"]["institution 1"]
    assert rows[2]["resynced"] == {"institution 1": {"preset_model": True, "key_exchange": True, "sums": [1, 2]}}
    assert "institution 1" in rows[2]["accepted"] and len(rows[1]["accepted"]) == 3
    assert rows[2]["bytes_on_wire"] > rows[1]["bytes_on_wire"] + 2 * rows[1]["bytes_received"] / 3
    assert_all_hold_one_model(states, 3)


def test_with_server_momentum_a_restarted_supernode_rebuilds_the_model_and_the_momentum_bit_for_bit(three_rounds, tmp_path):
    # Prepare: FedAvgM at the institutions (server_lr 1.5, momentum 0.5); institution 1 restarts after round 1
    params_file, creds = three_rounds
    raw = yaml.safe_load(params_file.read_text())
    raw["federated"].update(server_lr=1.5, server_momentum=0.5)
    momentum_file = tmp_path / "params_momentum.yaml"
    momentum_file.write_text(yaml.safe_dump(raw))
    # Execute
    rows, states = federate_rounds((momentum_file, creds), tmp_path, "blind", [at("evaluate", 1, 1, restart_after)])
    # Assert: resynced from the preset model and every sum, it holds what the others hold, momentum included
    assert rows[2]["resynced"] == {"institution 1": {"preset_model": True, "key_exchange": True, "sums": [1, 2]}}
    assert_all_hold_one_model(states, 3)
    momenta = [s["fb.momentum"]["vector"].numpy() for s in states]
    assert all(np.array_equal(m, momenta[0]) for m in momenta) and np.abs(momenta[0]).max() > 0
    assert all(np.isfinite(r["accuracy"]) for r in rows)


def test_an_institution_on_another_models_history_refuses_to_train_naming_both(three_rounds, tmp_path):
    def other_history(context, call_next, message):
        message.content["sync"]["chain"] = sync.next_chain(str(message.content["sync"]["chain"]), "forged")
        return call_next(message, context)

    rows, _ = federate_rounds(three_rounds, tmp_path, "plaintext", [at("train", 3, 2, other_history)])
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


# --- each institution reads only its own faces (benchmark/federated/partition.py) ----------------------------------

def test_an_institutions_file_holds_its_own_training_faces_and_the_public_test_pairs_only(tiny, tmp_path):
    params, _, _ = tiny
    data = local.dataset(params)
    files = write_partitions(data, 4, tmp_path)
    p = data.protocol
    for k, path in enumerate(files):
        part = load_partition(path)
        own = set(data.labels[p.institution == k])
        others = set(data.labels[(p.institution >= 0) & (p.institution != k)])
        assert set(part.labels[part.protocol.train]) == own and not (set(part.labels) & others)
        assert np.array_equal(part.labels[part.protocol.pairs], data.labels[p.pairs])
        assert np.array_equal(part.images[part.protocol.pairs], data.images[p.pairs])
        assert np.array_equal(local.institution_images(part, k, "all"), part.protocol.train)


def test_supernodes_given_their_own_files_federate_without_the_pooled_faces(tiny, tmp_path):
    params, params_file, creds = tiny
    files = write_partitions(local.dataset(params), 4, tmp_path / "institutions")
    out, pooled = tmp_path / "history.json", Path(params.paths.artifacts) / "data" / "faces.npz"
    hidden = pooled.rename(pooled.with_suffix(".hidden"))  # no node can read the pooled file
    try:
        run_local(make_server_app(progress=False), make_client_app(),
                  [creds.node_config(i, "blind", files[i]) for i in range(4)], creds.run_config(params_file, "blind", out))
    finally:
        hidden.rename(pooled)
    row = json.loads(out.read_text())["rounds"][0]
    assert len(row["accepted"]) == 4 and not row["rejected"] and np.isfinite(row["accuracy"])
