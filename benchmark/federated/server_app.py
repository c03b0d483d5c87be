"""The server's Flower ServerApp and its Strategy: aggregation rule x encryption workflow.

:class:`KnowledgeFederation` is a ``flwr.serverapp.strategy.Strategy``; Flower's ``Strategy.start``
owns the round protocol (train -> aggregate -> evaluate). The strategy composes two orthogonal pieces
(DESIGN.md, convention 5): an :class:`~benchmark.federated.aggregation.AggregationRule` (how updates
are weighted and summed) and a server-side :class:`~benchmark.federated.encryption.Workflow` (how they
travel and who can read them). Before round 1 a key exchange (``query`` messages) sends the
institutions what to encrypt for and collects their *public* context.

Every payload is signed (:mod:`benchmark.federated.identity`): the server verifies each institution's key
exchange reply and update under that institution's key in the roster of its run config, and signs the sum
it returns. An institution refuses a mode or key other than its own node config's
(:func:`~benchmark.federated.encryption.check_request`); the key exchange then fails naming it and why.

An institution that missed a round's sum, or lost its model (a restarted SuperNode), is brought back by the next
train message (:mod:`~benchmark.federated.sync`: the federation's round and hash chain, the sums it lacks, and for
one without a model the setup and the preset model), which it checks before training; before a round the server asks
each institution it suspects (offline when the last round began, failing or silent in it) which model it holds
(``query.held``), and ``resynced`` in the round's row names who got what. An institution whose SuperNode is not
connected when a round begins is named among that round's rejected.

Faults: a reply that is an error or never comes (an institution that dropped out), a sealed update
that fails its checks (unsigned, altered or signed by another party, malformed, of another length than the
shared network's, corrupted, truncated, wrong key, non-finite) are rejected with the sender's name and the reason, and the round goes on with the rest; with
fewer than ``min_institutions`` valid updates the round fails with :class:`QuorumError`. The encrypted
modes refuse a quorum below :data:`MIN_ENCRYPTED_QUORUM`: an institution that decrypts the sum of two
updates and subtracts its own would read the other's. An institution that cannot apply the sum (a sum that
fails its signature or transport checks) is recorded per round in ``refused`` with its reason.

Per round it records (``history``): accuracy (verification on the test pairs, reported by one
institution), the seconds spent encrypting, aggregating and decrypting (all parties), local training
seconds, the round's wall-clock seconds (``round_wall_seconds``: from sending the train messages to the last
evaluate reply; ``started_at`` / ``ended_at``: the same span as ``time.time()``, round 1 from the key exchange on),
payload bytes (sealed updates sent to the server, the sealed sum sent back, and
``bytes_on_wire``: both plus, in round 1, the key exchange and the preset model sent to every institution;
serialized payloads, without gRPC or TLS framing) and the same updates' float32 size, and who was accepted,
rejected or refused the sum.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy
from tqdm.auto import tqdm

from benchmark import config, io
from benchmark.config import MIN_ENCRYPTED_QUORUM
from benchmark.data.dataset import data_geometry
from benchmark.federated import ckks, local, sync
from benchmark.federated.aggregation import AggregationRule, create_aggregation
from benchmark.federated.ckks import CiphertextError, Sealed
from benchmark.federated.encryption import SERVER, Aggregate, Contribution, Workflow, create_workflow
from benchmark.federated.identity import Roster, Signer
from benchmark.federated.messages import open_signed, put_sealed

LOG = logging.getLogger(__name__)


class QuorumError(RuntimeError):
    """Fewer valid updates than ``federated.min_institutions`` in a round."""


class KnowledgeFederation(Strategy):
    """Rounds of: institutions train and seal their packed updates; the workflow checks and sums them;
    institutions open the sum and apply it.

    workflow:         server side of the encryption workflow (plaintext, third_party, blind).
    rule:             the aggregation rule (fedavg, uniform).
    min_institutions: quorum of valid updates per round (at least MIN_ENCRYPTED_QUORUM when encrypted).
    signer, roster:   the server's signing key and every party's verifying key.
    progress:         a tqdm bar with one tick per round.
    """

    def __init__(self, workflow: Workflow, rule: AggregationRule, min_institutions: int, signer: Signer, roster: Roster,
                 progress: bool = True) -> None:
        if workflow.encrypted and min_institutions < MIN_ENCRYPTED_QUORUM:
            raise ValueError(f"a quorum of {min_institutions} in the encrypted mode {workflow.name}: an institution that "
                             f"decrypts a sum of two updates and subtracts its own reads the other's; use at least "
                             f"{MIN_ENCRYPTED_QUORUM}")
        self.signer, self.roster = signer, roster
        self.workflow = workflow
        self.rule = rule
        self.min_institutions = min_institutions
        self.names: dict[int, str] = {}
        self.history: list[dict] = []
        self._sent: list[int] = []
        self._out: dict[str, int] = {}  # message id -> the node it went to, for the phase being aggregated
        self._pending: list[Message] = []  # the phase's messages, given their ids once Flower has sent them
        self._absent: list[int] = []
        self._timeout = 600.0
        self._exchange_started_at = self._round_started_at = 0.0  # time.time() of the key exchange, of the round
        self._aggregate: Aggregate | None = None
        self._train_metrics: dict[str, float] = {}
        self._key_exchange_bytes, self._opening_bytes, self._round_start, self._packed_values = 0, 0, 0.0, 0
        # resync (benchmark.federated.sync): the setup and preset model to resend, every round's sealed sum and
        # weight, the chain per round, and per node the last round whose sum it applied (None: it holds no model)
        self._setup: ConfigRecord | None = None
        self._initial: ArrayRecord | None = None
        self._sums: list[tuple[Sealed, float]] = []
        self._chains: list[str] = []
        self._at: dict[int, int | None] = {}
        self._keyed: set[int] = set()
        self._suspect: set[int] = set()
        self._resynced: dict[str, dict] = {}
        self._bar = tqdm(desc=f"federated {workflow.name}", unit="round", disable=not progress)

    def _name(self, node: int) -> str:
        return self.names.get(node, f"node {node}")

    def exchange_keys(self, grid: Grid, timeout: float) -> None:
        """Send the mode and what to encrypt for; collect each institution's signed public context (all must
        agree) and name. QuorumError naming every institution that refused or failed, and why, when fewer than
        the quorum answered."""
        self._exchange_started_at = time.time()
        setup = ConfigRecord({"mode": self.workflow.name, "recipient": self.workflow.public_context() or b""})
        self._setup = setup
        nodes = sorted(grid.get_node_ids())
        self._key_exchange_bytes = len(setup["recipient"]) * len(nodes)
        messages = [Message(RecordDict({"keys": setup}), dst_node_id=n, message_type="query") for n in nodes]
        publics, failed, self._timeout = set(), {}, timeout
        for reply in self._exchange(grid, messages):
            node = self._source(reply)
            try:
                if reply.has_error():
                    raise CiphertextError(reply.error.reason)
                sender = str(reply.content["seal"]["sender"]) if "seal" in reply.content else f"node {node}"
                sealed, _ = open_signed(reply.content, sender, self.roster, "keys", 0)
                ckks.check_transport(sealed, sender, "")
                if sender in self.names.values():
                    raise CiphertextError(f"{sender} answered from two nodes")
            except CiphertextError as err:
                failed[f"node {node}"] = str(err)
                LOG.warning("key exchange: node %s failed: %s", node, err)
                continue
            self.names[node] = sender
            self._keyed.add(node)
            publics.add(sealed.data)
            self._key_exchange_bytes += len(sealed.data)
        if len(self.names) < self.min_institutions:
            reasons = "; ".join(f"{k}: {v}" for k, v in failed.items()) or "none"
            raise QuorumError(
                f"key exchange: {len(self.names)} of {len(nodes)} institutions answered; "
                f"federated.min_institutions = {self.min_institutions}; failed: {reasons}"
            )
        if len(publics) != 1:
            raise ValueError(f"the institutions sent {len(publics)} different public contexts; they must share one key")
        if self.workflow.encrypted:
            self.workflow.set_institutions_context(publics.pop())

    def _exchange(self, grid: Grid, messages: list[Message]) -> Iterable[Message]:
        """Send ``messages`` and return the replies, remembering which node each message went to (:meth:`_source`)."""
        replies = list(grid.send_and_receive(messages, timeout=self._timeout))
        self._track(messages)
        return replies

    def _track(self, messages: Iterable[Message]) -> None:
        self._out = {m.metadata.message_id: m.metadata.dst_node_id for m in messages}

    def _source(self, reply: Message) -> int:
        """The node a reply answers for: the destination of the message it replies to (the SuperLink itself sends the
        error reply of a node that went offline), else its sender."""
        return self._out.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)

    def _probe(self, grid: Grid, nodes: list[int]) -> None:
        """Ask ``nodes`` (each suspected of having lost or missed something) which model they hold (``query.held``)
        and set what the server sends them accordingly: the sums they lack, or everything when they hold none, lost
        the key exchange or hold a model outside the federation's history."""
        messages = [Message(RecordDict({"held": ConfigRecord({})}), dst_node_id=n, message_type="query.held") for n in nodes]
        for reply in self._exchange(grid, messages):
            node = self._source(reply)
            if reply.has_error():
                continue
            held = reply.content["held"]
            k, chain = int(held["round"]), str(held["chain"])
            self._at[node] = k if 0 <= k < len(self._chains) and self._chains[k] == chain else None
            if not bool(held["keyed"]):
                self._keyed.discard(node)
            self._suspect.discard(node)

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self._round_start = time.perf_counter()
        # round 1 counts from the key exchange on
        self._round_started_at = self._exchange_started_at if server_round == 1 else time.time()
        if server_round == 1:
            self._packed_values = arrays["vector"].numpy().size + 1  # AggregationRule.pack: [w * update, w]
            self._initial, self._chains = arrays, [sync.initial_chain(arrays["vector"].numpy())]
        self._sent = sorted(grid.get_node_ids())
        self._absent = sorted(set(self.names) - set(self._sent))
        self._suspect |= set(self._absent)  # an institution offline at a round's start may come back without its model
        if probe := [n for n in self._sent if n in self._suspect]:
            self._probe(grid, probe)
        # round 1 also moves the key exchange to every institution; every round, the preset model and the sums an
        # institution lacks
        self._opening_bytes = self._key_exchange_bytes if server_round == 1 else 0
        self._resynced = {}
        messages = [Message(self._train_content(node, server_round), dst_node_id=node, message_type="train",
                            group_id=str(server_round)) for node in self._sent]
        self._pending = messages
        return messages

    def _train_content(self, node: int, server_round: int) -> RecordDict:
        """The train message of ``node``: the round, the federation's chain, and what the node lacks (module
        docstring of :mod:`~benchmark.federated.sync`)."""
        at = self._at.get(node)
        replay = list(range(1 if at is None else at + 1, server_round))
        content = RecordDict({"config": ConfigRecord({"round": server_round}),
                              "sync": ConfigRecord({"chain": self._chains[server_round - 1], "replay": replay})})
        if node not in self._keyed:
            content["keys"] = self._setup
            self._opening_bytes += len(self._setup["recipient"])
        if at is None:
            content["global"] = self._initial
            self._opening_bytes += self._initial["vector"].numpy().nbytes
        for k in replay:
            sealed, weight = self._sums[k - 1]
            put_sealed(content, sealed, weight, self.signer, "sum", k, slot=f"sum{k}.")
            self._opening_bytes += len(sealed.data)
        if server_round > 1 and (at is None or replay):
            self._resynced[self._name(node)] = {"preset_model": at is None, "key_exchange": node not in self._keyed,
                                                "sums": replay}
        return content

    def _lost_model(self, node: int, reason: str) -> None:
        """After an error reply: a node that says it lacks the model (sync.StaleModel) gets the setup, the preset model
        and every sum next round."""
        if sync.is_stale(reason):
            self._at[node] = None
            self._keyed.discard(node)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        contributions, rejected, answered = [], {}, set()
        train_seconds = encrypt_seconds = 0.0
        self._track(self._pending)
        for node in self._absent:
            rejected[self._name(node)] = f"dropped out: its SuperNode was not connected when round {server_round} began"
        for reply in replies:
            node = self._source(reply)
            answered.add(node)
            sender = self._name(node)
            if reply.has_error():
                rejected[sender] = f"dropped out: {reply.error.reason}"
                self._lost_model(node, reply.error.reason)
                self._suspect.add(node)
                continue
            self._at[node] = server_round - 1  # it trained, so it checked that it holds the previous round's model
            try:
                sealed, weight = open_signed(reply.content, sender, self.roster, "update", server_round)
                if sealed.values != self._packed_values:
                    raise CiphertextError(f"update from {sender} holds {sealed.values} values, but the shared network "
                                          f"packs into {self._packed_values} (its parameters and the weight)")
            except CiphertextError as err:
                rejected[sender] = str(err)
                continue
            contributions.append(Contribution(sender, sealed, weight))
            metrics = reply.content["metrics"]
            train_seconds += float(metrics["train_seconds"])
            encrypt_seconds += float(metrics["encrypt_seconds"])
        for node in self._sent:
            if node not in answered:
                rejected[self._name(node)] = "dropped out: no reply before the round's timeout"
                self._suspect.add(node)
        self._check_quorum(server_round, len(contributions), rejected)
        agg = self.workflow.aggregate(contributions, self.rule)
        rejected.update(agg.rejected)
        self._check_quorum(server_round, len(agg.accepted), rejected)
        for sender, reason in rejected.items():
            LOG.warning("round %d: rejected the update of %s: %s", server_round, sender, reason)
        self._aggregate = agg
        self._sums.append((agg.sealed, agg.weight))
        self._chains.append(sync.next_chain(self._chains[-1], agg.sealed.digest))
        self._train_metrics = {
            "train_seconds": train_seconds,
            "encrypt_seconds": encrypt_seconds + agg.seconds.get("encrypt", 0.0),
            "aggregate_seconds": agg.seconds.get("aggregate", 0.0),
            "server_decrypt_seconds": agg.seconds.get("decrypt", 0.0),
            "bytes_sent": float(sum(len(c.sealed.data) for c in contributions)),
            "bytes_plaintext": float(sum(4 * c.sealed.values for c in contributions)),
        }
        record = self.history_row(server_round, agg, rejected)
        self.history.append(record)
        return ArrayRecord({"data": Array(np.frombuffer(agg.sealed.data, np.uint8))}), MetricRecord(self._train_metrics)

    def _check_quorum(self, server_round: int, valid: int, rejected: dict[str, str]) -> None:
        if valid < self.min_institutions:
            reasons = "; ".join(f"{k}: {v}" for k, v in rejected.items()) or "none"
            raise QuorumError(
                f"round {server_round}: {valid} valid update(s), fewer than federated.min_institutions = "
                f"{self.min_institutions}; rejected: {reasons}"
            )

    def history_row(self, server_round: int, agg: Aggregate, rejected: dict[str, str]) -> dict:
        return {"round": server_round, **self._train_metrics, "accepted": list(agg.accepted), "rejected": dict(rejected),
                "resynced": dict(self._resynced)}

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        agg = self._aggregate
        evaluator = next(n for n in self._sent if self._name(n) in agg.accepted)
        messages = []
        for node in self._sent:
            content = put_sealed(RecordDict(), agg.sealed, agg.weight, self.signer, "sum", server_round)
            content["config"] = ConfigRecord({"round": server_round, "evaluate": node == evaluator})
            messages.append(Message(content, dst_node_id=node, message_type="evaluate", group_id=str(server_round)))
        self._pending = messages
        return messages

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        row = self.history[-1]
        decrypt, received, verification, refused = row.pop("server_decrypt_seconds"), 0, None, {}
        self._track(self._pending)
        answered = set()
        for reply in replies:
            node = self._source(reply)
            answered.add(node)
            if reply.has_error():
                refused[self._name(node)] = reply.error.reason
                LOG.warning("round %d: %s could not apply the sum: %s", server_round, self._name(node), reply.error.reason)
                self._lost_model(node, reply.error.reason)
                self._suspect.add(node)
                continue
            self._at[node] = server_round
            metrics = reply.content["metrics"]
            decrypt += float(metrics["decrypt_seconds"])
            received += len(self._aggregate.sealed.data)
            if "accuracy_mean" in metrics:
                verification = {k: float(metrics[k]) for k in local.VERIFICATION_KEYS}
        for node in set(self._sent) - answered:
            refused[self._name(node)] = "no reply before the round's timeout"
            self._suspect.add(node)
        row.update(decrypt_seconds=decrypt, bytes_received=float(received), verification=verification, refused=refused,
                   bytes_on_wire=float(row["bytes_sent"] + received + self._opening_bytes),
                   round_wall_seconds=time.perf_counter() - self._round_start,
                   started_at=self._round_started_at, ended_at=time.time())
        row["accuracy"] = verification["accuracy_mean"] if verification else math.nan
        self._bar.update(1)
        self._bar.set_postfix(accuracy=f"{row['accuracy']:.3f}", rejected=len(row["rejected"]))
        return MetricRecord({"accuracy": row["accuracy"], "decrypt_seconds": decrypt})

    def close(self) -> None:
        """Close the progress bar."""
        self._bar.close()

    def summary(self) -> None:
        LOG.info("KnowledgeFederation: workflow %s, rule %s, quorum %d", self.workflow.name, self.rule.name, self.min_institutions)


def make_server_app(progress: bool = True) -> ServerApp:
    """The ServerApp. Run config (:meth:`~benchmark.federated.credentials.Credentials.run_config`): ``params``
    (params.yaml path), ``mode`` (plaintext | third_party | blind), ``signing-key`` (the server's Ed25519 key),
    ``roster``, ``third-party-keys`` (third_party: the third party's CKKS key pair), optional ``out`` (JSON file
    for the per-round history) and ``round-timeout`` (seconds)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        params = config.load(str(context.run_config["params"]))
        cfg = params.federated
        timeout = float(context.run_config.get("round-timeout", 600.0))
        run = context.run_config
        keys = Path(str(run["third-party-keys"])).read_bytes() if "third-party-keys" in run else None
        workflow = create_workflow(str(run["mode"]), cfg.ckks, keys)
        signer, roster = Signer(SERVER, Path(str(run["signing-key"]))), Roster(Path(str(run["roster"])))
        strategy = KnowledgeFederation(workflow, create_aggregation(cfg.aggregation), cfg.min_institutions, signer,
                                       roster, progress)
        strategy.exchange_keys(grid, timeout)
        initial = local.shared_vector(local.new_model(params, data_geometry(params.data)))
        strategy.start(grid, ArrayRecord({"vector": Array(initial)}), num_rounds=cfg.rounds, timeout=timeout)
        strategy.close()
        if context.run_config.get("out"):
            record = {"mode": workflow.name, "server_holds_secret_key": workflow.holds_secret_key, "rounds": strategy.history}
            io.write_json(Path(str(context.run_config["out"])), record)

    return app


app = make_server_app()
