"""The server's Flower ServerApp and its Strategy: aggregation rule x encryption workflow.

:class:`KnowledgeFederation` is a ``flwr.serverapp.strategy.Strategy``; Flower's ``Strategy.start``
owns the round protocol (train -> aggregate -> evaluate). The strategy composes two orthogonal pieces
(DESIGN.md, convention 5): an :class:`~benchmark.federated.aggregation.AggregationRule` (how updates
are weighted and summed) and a server-side :class:`~benchmark.federated.encryption.Workflow` (how they
travel and who can read them). Before round 1 a key exchange (``query`` messages) sends the
institutions what to encrypt for and collects their *public* context.

Faults: a reply that is an error or never comes (an institution that dropped out), a sealed update
that fails its checks (corrupted, truncated, wrong key, non-finite) are rejected with the sender's name
and the reason, and the round goes on with the rest; with fewer than ``min_institutions`` valid updates
the round fails with :class:`QuorumError`.

Per round it records (``history``): accuracy (verification on the test pairs, reported by one
institution), the seconds spent encrypting, aggregating and decrypting (all parties), local training
seconds, bytes on the wire (sealed updates sent to the server, the sealed sum sent back) and the same
updates' float32 size, and who was accepted or rejected.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy
from tqdm.auto import tqdm

from benchmark import config, io
from benchmark.data.dataset import data_geometry
from benchmark.federated import local
from benchmark.federated.aggregation import AggregationRule, create_aggregation
from benchmark.federated.ckks import CiphertextError
from benchmark.federated.encryption import Aggregate, Contribution, Workflow, create_workflow
from benchmark.federated.messages import get_sealed, put_sealed

LOG = logging.getLogger(__name__)


class QuorumError(RuntimeError):
    """Fewer valid updates than ``federated.min_institutions`` in a round."""


class KnowledgeFederation(Strategy):
    """Rounds of: institutions train and seal their packed updates; the workflow checks and sums them;
    institutions open the sum and apply it.

    workflow:         server side of the encryption workflow (plaintext, third_party, blind).
    rule:             the aggregation rule (fedavg, uniform).
    min_institutions: quorum of valid updates per round.
    progress:         a tqdm bar with one tick per round.
    """

    def __init__(self, workflow: Workflow, rule: AggregationRule, min_institutions: int, progress: bool = True) -> None:
        self.workflow = workflow
        self.rule = rule
        self.min_institutions = min_institutions
        self.names: dict[int, str] = {}
        self.history: list[dict] = []
        self._sent: list[int] = []
        self._aggregate: Aggregate | None = None
        self._train_metrics: dict[str, float] = {}
        self._bar = tqdm(desc=f"federated {workflow.name}", unit="round", disable=not progress)

    def _name(self, node: int) -> str:
        return self.names.get(node, f"node {node}")

    def exchange_keys(self, grid: Grid, timeout: float) -> None:
        """Send what to encrypt for, collect the institutions' public context (all must agree) and names."""
        setup = ConfigRecord({"recipient": self.workflow.public_context() or b"", "encrypted": self.workflow.encrypted})
        nodes = sorted(grid.get_node_ids())
        messages = [Message(RecordDict({"keys": setup}), dst_node_id=n, message_type="query") for n in nodes]
        publics = set()
        for reply in grid.send_and_receive(messages, timeout=timeout):
            if reply.has_error():
                LOG.warning("key exchange: node %s failed: %s", reply.metadata.src_node_id, reply.error.reason)
                continue
            keys = reply.content["keys"]
            self.names[reply.metadata.src_node_id] = str(keys["sender"])
            publics.add(bytes(keys["public"]))
        if len(self.names) < self.min_institutions:
            raise QuorumError(
                f"key exchange: {len(self.names)} of {len(nodes)} institutions answered; "
                f"federated.min_institutions = {self.min_institutions}"
            )
        if len(publics) != 1:
            raise ValueError(f"the institutions sent {len(publics)} different public contexts; they must share one key")
        if self.workflow.encrypted:
            self.workflow.set_institutions_context(publics.pop())

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self._sent = sorted(grid.get_node_ids())
        messages = []
        for node in self._sent:
            content = RecordDict({"config": ConfigRecord({"round": server_round})})
            if server_round == 1:
                content["global"] = arrays
            messages.append(Message(content, dst_node_id=node, message_type="train", group_id=str(server_round)))
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        contributions, rejected, answered = [], {}, set()
        train_seconds = encrypt_seconds = 0.0
        for reply in replies:
            node = reply.metadata.src_node_id
            answered.add(node)
            sender = self._name(node)
            if reply.has_error():
                rejected[sender] = f"dropped out: {reply.error.reason}"
                continue
            try:
                sealed, weight, _ = get_sealed(reply.content, sender)
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
        self._check_quorum(server_round, len(contributions), rejected)
        agg = self.workflow.aggregate(contributions, self.rule)
        rejected.update(agg.rejected)
        self._check_quorum(server_round, len(agg.accepted), rejected)
        for sender, reason in rejected.items():
            LOG.warning("round %d: rejected the update of %s: %s", server_round, sender, reason)
        self._aggregate = agg
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
        return {"round": server_round, **self._train_metrics, "accepted": list(agg.accepted), "rejected": dict(rejected)}

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        agg = self._aggregate
        evaluator = next(n for n in self._sent if self._name(n) in agg.accepted)
        messages = []
        for node in self._sent:
            content = put_sealed(RecordDict(), agg.sealed, agg.weight, "the server")
            content["config"] = ConfigRecord({"round": server_round, "evaluate": node == evaluator})
            messages.append(Message(content, dst_node_id=node, message_type="evaluate", group_id=str(server_round)))
        return messages

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        row = self.history[-1]
        decrypt, received, verification = row.pop("server_decrypt_seconds"), 0, None
        for reply in replies:
            if reply.has_error():
                LOG.warning("round %d: %s could not apply the sum: %s", server_round, self._name(reply.metadata.src_node_id), reply.error.reason)
                continue
            metrics = reply.content["metrics"]
            decrypt += float(metrics["decrypt_seconds"])
            received += len(self._aggregate.sealed.data)
            if "accuracy_mean" in metrics:
                verification = {k: float(metrics[k]) for k in local.VERIFICATION_KEYS}
        row.update(decrypt_seconds=decrypt, bytes_received=float(received), verification=verification)
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
    """The ServerApp. Run config: ``params`` (params.yaml path), ``mode`` (plaintext | third_party |
    blind), optional ``out`` (JSON file for the per-round history) and ``round-timeout`` (seconds)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        params = config.load(str(context.run_config["params"]))
        cfg = params.federated
        timeout = float(context.run_config.get("round-timeout", 600.0))
        workflow = create_workflow(str(context.run_config["mode"]), cfg.ckks)
        strategy = KnowledgeFederation(workflow, create_aggregation(cfg.aggregation), cfg.min_institutions, progress)
        strategy.exchange_keys(grid, timeout)
        initial = local.shared_vector(local.new_model(params, data_geometry(params.data)))
        strategy.start(grid, ArrayRecord({"vector": Array(initial)}), num_rounds=cfg.rounds, timeout=timeout)
        strategy.close()
        if context.run_config.get("out"):
            record = {"mode": workflow.name, "server_holds_secret_key": workflow.holds_secret_key, "rounds": strategy.history}
            io.write_json(Path(str(context.run_config["out"])), record)

    return app


app = make_server_app()
