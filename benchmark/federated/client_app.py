"""The institutions' Flower ClientApp ("knowledge federation", Embodiment 1, S110-S140).

Each SuperNode is one institution. Its ``node_config`` gives ``partition-id`` (the institution index of
:attr:`benchmark.data.protocol.Protocol.institution`) and, in the encrypted modes, ``keys``: the path of
the institutions' shared CKKS key pair, distributed among institutions out of band (never to the
server). The run config gives ``params`` (path of params.yaml) and ``mode``.

Messages it answers:

* ``query`` (key exchange): stores whether to encrypt and for whom (the third party's public context,
  or, when the server sends none, the institutions' own key), replies with the institutions' *public* context and its number of training images;
* ``train``: loads the global shared network (round 1: the preset parameters in the message; later
  rounds: what it decrypted last round), trains it and its private head locally, packs the update with
  its weight (:mod:`~benchmark.federated.aggregation`), checks it is finite and seals it;
* ``evaluate``: opens the server's sealed sum, unpacks it and applies it to the global network; the
  institution asked to ``evaluate`` also reports verification on the test pairs.

The head and the global network stay in the node's ``context.state`` between messages.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from benchmark import config
from benchmark.federated import local
from benchmark.federated.aggregation import create_aggregation
from benchmark.federated.encryption import InstitutionCipher
from benchmark.federated.messages import get_sealed, put_sealed

SERVER = "the server"


def institution_name(context: Context) -> str:
    return f"institution {int(context.node_config['partition-id'])}"


def _params(context: Context) -> config.Params:
    return config.load(str(context.run_config["params"]))


def _cipher(context: Context) -> InstitutionCipher:
    """The institution's cipher, as the server's key exchange set it up (``fb.keys`` in the state)."""
    name = institution_name(context)
    setup = context.state["fb.keys"]
    if not bool(setup["encrypted"]):
        return InstitutionCipher(name, None, None)
    keys = Path(str(context.node_config["keys"])).read_bytes()
    return InstitutionCipher(name, keys, setup["recipient"] or None)


def _own_images(context: Context, params: config.Params) -> tuple[local.Dataset, np.ndarray]:
    data = local.dataset(params)
    return data, local.institution_images(data, int(context.node_config["partition-id"]), params.federated.images)


def make_client_app(mods: list | None = None) -> ClientApp:
    """The institutions' ClientApp; ``mods`` are Flower mods wrapped around every call (tests inject faults)."""
    app = ClientApp(mods=mods or [])

    @app.query()
    def keys(message: Message, context: Context) -> Message:
        setup = message.content["keys"]
        context.state["fb.keys"] = ConfigRecord({"recipient": setup["recipient"], "encrypted": bool(setup["encrypted"])})
        cipher = _cipher(context)
        _, idx = _own_images(context, _params(context))
        reply = ConfigRecord(
            {"public": cipher.public_context() or b"", "num_examples": int(len(idx)), "sender": cipher.name}
        )
        return Message(RecordDict({"keys": reply}), reply_to=message)

    @app.train()
    def train(message: Message, context: Context) -> Message:
        params = _params(context)
        cipher = _cipher(context)
        server_round = int(message.content["config"]["round"])
        data, idx = _own_images(context, params)
        model = local.new_model(params, data.geometry)
        if "global" in message.content:
            context.state["fb.global"] = message.content["global"]
        local.load_shared_vector(model, context.state["fb.global"]["vector"].numpy())
        head = local.new_head(params.federated, data.labels[idx], params.seed + int(context.node_config["partition-id"]))
        if "fb.head" in context.state:
            head.load_state_dict(context.state["fb.head"].to_torch_state_dict())
        result = local.train_round(model, head, data, idx, local.local_config(params, server_round, int(context.node_config["partition-id"])))
        context.state["fb.head"] = ArrayRecord(head.state_dict())
        rule = create_aggregation(params.federated.aggregation)
        packed = rule.pack(result.update, result.num_examples)
        tick = time.perf_counter()
        sealed = cipher.seal(packed)
        encrypt_seconds = time.perf_counter() - tick if cipher.recipient is not None else 0.0
        content = put_sealed(RecordDict(), sealed, rule.weight(result.num_examples), cipher.name)
        content["metrics"] = MetricRecord(
            {"train_seconds": result.seconds, "encrypt_seconds": encrypt_seconds, "num_examples": result.num_examples}
        )
        return Message(content, reply_to=message)

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        params = _params(context)
        cipher = _cipher(context)
        sealed, weight, _ = get_sealed(message.content, SERVER)
        tick = time.perf_counter()
        total = cipher.open(sealed)
        decrypt_seconds = time.perf_counter() - tick if cipher.keys is not None else 0.0
        update = create_aggregation(params.federated.aggregation).unpack(total, weight, SERVER)
        vector = context.state["fb.global"]["vector"].numpy() + update
        context.state["fb.global"] = ArrayRecord({"vector": Array(vector)})
        metrics = {"decrypt_seconds": decrypt_seconds}
        if bool(message.content["config"]["evaluate"]):
            data = local.dataset(params)
            model = local.new_model(params, data.geometry)
            local.load_shared_vector(model, vector)
            metrics.update(local.verify(model, data))
        return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=message)

    return app


app = make_client_app()
