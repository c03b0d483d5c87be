"""Run the ServerApp and the institutions' ClientApps in one process, through Flower's ``Grid`` interface.

Flower 1.42's Simulation Runtime (``flwr.simulation.run_simulation``) needs Ray (``flwr[simulation]``,
~500 MB more, not installed); its only backend is ``ray``. The stage therefore runs the same apps on an
in-process :class:`LocalGrid`: a ``flwr.serverapp.Grid`` whose ``send_and_receive`` hands each message
to the ClientApp of its destination node (one ``Context`` per institution, kept between messages as a
SuperNode keeps it) and returns the replies. A ClientApp that raises yields an error reply
(``ErrorCode.CLIENT_APP_RAISED_EXCEPTION``) and leaves the node's state as it was before the message, as a
SuperNode does. Messages are passed as objects, not serialized; bytes on the wire are counted from the sealed
payloads. The same apps run in Flower's deployment mode (SuperLink + SuperNodes as processes):
:mod:`benchmark.federated.deployment`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import uuid4

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

LOG = logging.getLogger(__name__)
FIRST_NODE_ID = 1001


class LocalGrid(Grid):
    """One ClientApp, one Context per node; node ``FIRST_NODE_ID + i`` gets ``node_configs[i]``."""

    def __init__(self, client_app: ClientApp, node_configs: list[dict], run_config: dict, run_id: int = 1) -> None:
        self.client_app = client_app
        self._run = Run.create_empty(run_id=run_id)
        self.contexts = {
            FIRST_NODE_ID + i: Context(run_id, FIRST_NODE_ID + i, dict(cfg), RecordDict(), dict(run_config))
            for i, cfg in enumerate(node_configs)
        }
        self._replies: dict[str, Message] = {}
        TaskIdentity.task_id = 1
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = SUPERLINK_NODE_ID

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = str(uuid4())
            ids.append(message.metadata.message_id)
            self._replies[message.metadata.message_id] = self._deliver(message)
        return ids

    def _deliver(self, message: Message) -> Message:
        node = message.metadata.dst_node_id
        state = self.contexts[node].state
        before = dict(state.items())
        try:
            return self.client_app(message, self.contexts[node])
        except Exception as err:  # noqa: BLE001 - any ClientApp failure becomes an error reply, as on a SuperNode
            LOG.warning("node %d: the ClientApp raised %s: %s", node, type(err).__name__, err)
            for key in [k for k in state if k not in before]:  # a SuperNode keeps no state of a failed message
                del state[key]
            state.update(before)
            return Message(Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, f"{type(err).__name__}: {err}"), reply_to=message)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))


def run_local(server_app: ServerApp, client_app: ClientApp, node_configs: list[dict], run_config: dict) -> LocalGrid:
    """Run ``server_app`` against one ``client_app`` per entry of ``node_configs``; returns the grid
    (its ``contexts`` hold each institution's state after the run)."""
    grid = LocalGrid(client_app, node_configs, run_config)
    server_app(grid, Context(grid.run.run_id, SUPERLINK_NODE_ID, {}, RecordDict(), dict(run_config)))
    return grid
