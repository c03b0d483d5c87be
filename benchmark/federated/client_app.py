"""The institutions' Flower ClientApp ("knowledge federation", Embodiment 1, S110-S140).

Each SuperNode is one institution. Its ``node_config`` (:meth:`~benchmark.federated.credentials.Credentials.
node_config`) gives ``partition-id`` (the institution index of :attr:`benchmark.data.protocol.Protocol.institution`),
``mode`` (the one mode it agreed to), ``signing-key`` (its Ed25519 key) and ``roster`` (every party's verifying
key), optionally ``data`` (the institution's own data file, :mod:`~benchmark.federated.partition`), and in the
encrypted modes ``keys`` (the institutions' shared CKKS key pair, distributed among institutions
out of band, never to the server) and, in ``third_party`` mode, ``third-party-key`` (the fingerprint of the
third party's key it encrypts for). The run config gives ``params`` (path of params.yaml).

Messages it answers:

* ``query.held``: the round and hash chain of the global model it holds (:mod:`~benchmark.federated.sync`) and
  whether it holds the key exchange, for a server that suspects it missed something or restarted;
* ``query`` (key exchange): refuses unless the server asks for the node's own mode and, in ``third_party``
  mode, for the trusted third party's key (:func:`~benchmark.federated.encryption.check_request`); stores that
  recipient, replies with the institutions' *public* context and its number of training images, signed;
* ``train``: brings its global shared network to the federation's previous round (:mod:`~benchmark.federated.sync`:
  round 1, or after a restart, the preset parameters in the message; the sums it missed; else what it decrypted last
  round), trains it and its private head locally, clips and noises the update
  when ``federated.dp`` is on (:mod:`~benchmark.federated.dp`), packs it with
  its weight (:mod:`~benchmark.federated.aggregation`), checks it is finite, seals and signs it;
* ``evaluate``: verifies the server's signature on the sealed sum of this round, opens it, unpacks it and
  steps the global network by it (:mod:`~benchmark.federated.server_step`: FedAvg, or FedAvgM with the momentum
  in ``context.state``); the institution asked to ``evaluate`` also reports verification on the
  test pairs.

The head and the global network stay in the node's ``context.state`` between messages.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from benchmark import config
from benchmark.federated import ckks, credentials, dp, local, sync
from benchmark.federated.aggregation import create_aggregation
from benchmark.federated.ckks import Sealed
from benchmark.federated.encryption import SERVER, InstitutionCipher, check_request
from benchmark.federated.identity import Roster, Signer
from benchmark.federated.messages import open_signed, put_sealed
from benchmark.federated.partition import load_partition
from benchmark.federated.server_step import server_step
from benchmark.federated.sync import StaleModel


def institution_name(context: Context) -> str:
    return credentials.institution_name(int(context.node_config["partition-id"]))


def _signer(context: Context) -> Signer:
    return Signer(institution_name(context), Path(str(context.node_config["signing-key"])))


def _roster(context: Context) -> Roster:
    return Roster(Path(str(context.node_config["roster"])))


def _params(context: Context) -> config.Params:
    return config.load(str(context.run_config["params"]))


def _keys(context: Context) -> bytes | None:
    """The institutions' shared CKKS key pair from the node config (None in plaintext mode)."""
    return None if str(context.node_config["mode"]) == "plaintext" else Path(str(context.node_config["keys"])).read_bytes()


def _cipher(context: Context) -> InstitutionCipher:
    """The institution's cipher for its own mode (node config), encrypting for the recipient the key exchange
    checked (``fb.keys`` in the state; third_party mode only)."""
    mode = str(context.node_config["mode"])
    recipient = bytes(context.state["fb.keys"]["recipient"]) if mode == "third_party" else None
    return InstitutionCipher(institution_name(context), _keys(context), recipient)


def _data(context: Context, params: config.Params) -> local.Dataset:
    """The institution's own data file when its node config names one (``data``: :mod:`~benchmark.federated.partition`;
    it then reads no other institution's faces), else the data stage's pooled file (the in-process stage)."""
    if "data" in context.node_config:
        return _partition(str(context.node_config["data"]))
    return local.dataset(params)


@functools.lru_cache(maxsize=16)
def _partition(path: str) -> local.Dataset:
    return load_partition(Path(path))


def _own_images(context: Context, params: config.Params) -> tuple[local.Dataset, np.ndarray]:
    data = _data(context, params)
    return data, local.institution_images(data, int(context.node_config["partition-id"]), params.federated.images)


def _accept_setup(setup: ConfigRecord, context: Context) -> None:
    """Check the server's mode and recipient against the node config and keep the recipient (``fb.keys``)."""
    node = context.node_config
    recipient = bytes(setup["recipient"]) or None
    check_request(institution_name(context), str(node["mode"]), str(setup["mode"]), recipient,
                  str(node.get("third-party-key", "")))
    context.state["fb.keys"] = ConfigRecord({"recipient": recipient or b""})


def _held(context: Context) -> tuple[int, str]:
    """(round, chain) of the global model the institution holds; (-1, "") without one."""
    if "fb.global" not in context.state:
        return -1, ""
    held = context.state["fb.sync"]
    return int(held["round"]), str(held["chain"])


def _apply_sum(content: RecordDict, context: Context, params: config.Params, server_round: int, slot: str = "") -> float:
    """Verify the server's signature on round ``server_round``'s sealed sum (under ``slot``), open it and step the
    held global model, which must be the previous round's, by its mean (:func:`~benchmark.federated.server_step.
    server_step`: FedAvg, or with ``federated.server_lr``/``server_momentum``); returns the seconds spent decrypting."""
    held, chain = _held(context)
    if held != server_round - 1:
        raise StaleModel(f"{institution_name(context)} holds the model of round {held} (-1: none), so it cannot apply "
                         f"the sum of round {server_round}")
    cipher = InstitutionCipher(institution_name(context), _keys(context), None)
    sealed, weight = open_signed(content, SERVER, _roster(context), "sum", server_round, slot)
    tick = time.perf_counter()
    total = cipher.open(sealed)
    decrypt_seconds = time.perf_counter() - tick if cipher.keys is not None else 0.0
    update = create_aggregation(params.federated.aggregation).unpack(total, weight, SERVER)
    held_momentum = context.state["fb.momentum"]["vector"].numpy() if "fb.momentum" in context.state else None
    cfg = params.federated
    weights, momentum = server_step(context.state["fb.global"]["vector"].numpy(), update, held_momentum, cfg.server_lr,
                                    cfg.server_momentum, local.statistics_mask(params))
    context.state["fb.global"] = ArrayRecord({"vector": Array(weights)})
    if momentum is not None:
        context.state["fb.momentum"] = ArrayRecord({"vector": Array(momentum)})
    context.state["fb.sync"] = ConfigRecord({"round": server_round, "chain": sync.next_chain(chain, sealed.digest)})
    return decrypt_seconds


def _catch_up(content: RecordDict, context: Context, params: config.Params, server_round: int) -> None:
    """Bring the held model to the federation's of the round before ``server_round`` (:mod:`~benchmark.federated.sync`):
    take the setup and preset model when sent, apply the replayed sums it lacks; StaleModel naming what it holds
    unless it then holds the federation's round and chain."""
    if "keys" in content:
        _accept_setup(content["keys"], context)
    if "global" in content:
        context.state["fb.global"] = content["global"]
        if "fb.momentum" in context.state:
            del context.state["fb.momentum"]
        context.state["fb.sync"] = ConfigRecord({"round": 0, "chain": sync.initial_chain(content["global"]["vector"].numpy())})
    name = institution_name(context)
    if "fb.global" not in context.state or "fb.keys" not in context.state:
        raise StaleModel(f"{name} holds no global model or key exchange (a restarted SuperNode?); it needs the preset "
                         "model and every sum")
    wanted = content["sync"]
    for k in wanted["replay"]:
        if k > _held(context)[0]:
            _apply_sum(content, context, params, int(k), slot=f"sum{k}.")
    held, chain = _held(context)
    if (held, chain) != (server_round - 1, str(wanted["chain"])):
        raise StaleModel(f"{name} holds the model of round {held} (chain {chain[:12]}), but round {server_round} "
                         f"trains from the model of round {server_round - 1} (chain {str(wanted['chain'])[:12]})")


def make_client_app(mods: list | None = None) -> ClientApp:
    """The institutions' ClientApp; ``mods`` are Flower mods wrapped around every call (tests inject faults)."""
    app = ClientApp(mods=mods or [])

    @app.query()
    def keys(message: Message, context: Context) -> Message:
        _accept_setup(message.content["keys"], context)
        cipher = _cipher(context)
        _, idx = _own_images(context, _params(context))
        public = cipher.public_context() or b""
        content = put_sealed(RecordDict(), Sealed(public, ckks.digest(public), "", int(len(idx))), 0.0,
                             _signer(context), "keys", 0)
        return Message(content, reply_to=message)

    @app.query("held")
    def held(message: Message, context: Context) -> Message:
        held_round, chain = _held(context)
        return Message(RecordDict({"held": ConfigRecord({"round": held_round, "chain": chain,
                                                         "keyed": "fb.keys" in context.state})}), reply_to=message)

    @app.train()
    def train(message: Message, context: Context) -> Message:
        params = _params(context)
        server_round = int(message.content["config"]["round"])
        _catch_up(message.content, context, params, server_round)
        cipher = _cipher(context)
        data, idx = _own_images(context, params)
        model = local.new_model(params, data.geometry)
        local.load_shared_vector(model, context.state["fb.global"]["vector"].numpy())
        head = local.new_head(params.federated, data.labels[idx], params.seed + int(context.node_config["partition-id"]))
        if "fb.head" in context.state:
            head.load_state_dict(context.state["fb.head"].to_torch_state_dict())
        result = local.train_round(model, head, data, idx, local.local_config(params, server_round, int(context.node_config["partition-id"])))
        context.state["fb.head"] = ArrayRecord(head.state_dict())
        rule = create_aggregation(params.federated.aggregation)
        packed = rule.pack(dp.privatize(result.update, params.federated.dp), result.num_examples)
        tick = time.perf_counter()
        sealed = cipher.seal(packed)
        encrypt_seconds = time.perf_counter() - tick if cipher.recipient is not None else 0.0
        content = put_sealed(RecordDict(), sealed, rule.weight(result.num_examples), _signer(context), "update", server_round)
        content["metrics"] = MetricRecord(
            {"train_seconds": result.seconds, "encrypt_seconds": encrypt_seconds, "num_examples": result.num_examples}
        )
        return Message(content, reply_to=message)

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        params = _params(context)
        server_round = int(message.content["config"]["round"])
        metrics = {"decrypt_seconds": _apply_sum(message.content, context, params, server_round)}
        if bool(message.content["config"]["evaluate"]):
            data = _data(context, params)
            model = local.new_model(params, data.geometry)
            local.load_shared_vector(model, context.state["fb.global"]["vector"].numpy())
            metrics.update(local.verify(model, data))
        return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=message)

    return app


app = make_client_app()
