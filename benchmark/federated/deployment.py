"""Flower's deployment mode on one machine: a SuperLink and one SuperNode per institution as separate
processes on 127.0.0.1, and ``flwr run`` submitting the federation's apps to them. The SuperNodes reach the
SuperLink through a :class:`~benchmark.federated.wire.CountingRelay`, which counts the bytes on their links
(:func:`measure`). The links run TLS with certificates generated for the run, and the SuperLink admits only the
SuperNodes whose keys were registered (:mod:`benchmark.federated.tls`).

flwr 1.42 serves the SuperLink's Fleet, Control and Runtime APIs over HTTP on one port; each SuperNode
serves its ClientApp runtime API on its own port and starts a ``flwr-clientapp`` process per message;
the SuperLink starts ``flwr-serverapp``. ``flwr run`` packs an app folder (``pyproject.toml`` naming the
components ``benchmark.federated.server_app:app`` and ``benchmark.federated.client_app:app``) into a
Flower App Bundle and submits it through the SuperLink connection of a Flower configuration file
(``$FLWR_HOME/config.toml``). The apps import this checkout's ``benchmark`` through ``PYTHONPATH``.

:class:`LocalDeployment` starts everything in its own session and, on exit, stops every process it
started and their descendants (found with psutil before any is stopped), with SIGTERM then SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

import benchmark
from benchmark.config import Params
from benchmark.federated import local
from benchmark.federated.credentials import Credentials, write_credentials
from benchmark.federated.partition import write_partitions
from benchmark.federated.tls import write_tls
from benchmark.federated.wire import CountingRelay

APP_TOML = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "facebenchfederation"
version = "1.0.0"
description = "facebench knowledge federation (benchmark.federated)"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "facebench"

[tool.flwr.app.components]
serverapp = "benchmark.federated.server_app:app"
clientapp = "benchmark.federated.client_app:app"

[tool.flwr.app.config]
{config}
"""

CONNECTION_TOML = """[superlink]
default = "local"

[superlink.local]
address = "127.0.0.1:{port}"
root-certificates = "{ca}"
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> None:
    """Block until 127.0.0.1:``port`` accepts connections; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def toml_pairs(config: dict, separator: str) -> str:
    """``key=value`` pairs of ``config`` (str, int, float values) as TOML, joined by ``separator`` (a space: the
    SuperNode's ``--node-config``; a newline: the app's config table)."""
    return separator.join(f"{k}={json.dumps(v)}" for k, v in config.items())


class LocalDeployment:
    """A SuperLink and one SuperNode per institution of ``creds`` on 127.0.0.1, in ``workdir`` (logs, app
    folder, Flower home); each SuperNode gets its institution's node config for ``mode``
    (:meth:`~benchmark.federated.credentials.Credentials.node_config`), with its own data file from ``data`` when
    given (:func:`~benchmark.federated.partition.write_partitions`)."""

    def __init__(self, workdir: Path, creds: Credentials, mode: str, data: list[Path] | None = None) -> None:
        self.workdir = Path(workdir)
        self.creds, self.mode, self.data = creds, mode, data
        self.tls = write_tls(self.workdir / "tls", creds.institutions)
        self.port = free_port()
        self.relay: CountingRelay | None = None
        self.processes: list[subprocess.Popen] = []
        bin_dir = Path(sys.executable).parent
        self.bin = {name: str(bin_dir / name) for name in ("flower-superlink", "flower-supernode", "flwr")}
        root = str(Path(benchmark.__file__).resolve().parents[1])
        path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
        self.env = {**os.environ, "PATH": path, "FLWR_HOME": str(self.workdir / "flwr_home"), "PYTHONPATH": root}

    def _start(self, args: list[str], log: str) -> subprocess.Popen:
        with open(self.workdir / log, "ab") as out:
            return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)

    def __enter__(self) -> "LocalDeployment":
        home = self.workdir / "flwr_home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(CONNECTION_TOML.format(port=self.port, ca=self.tls.ca_certificate))
        tls = self.tls
        try:
            self.processes.append(self._start(
                [self.bin["flower-superlink"], "--ssl-ca-certfile", str(tls.ca_certificate), "--ssl-certfile",
                 str(tls.server_certificate), "--ssl-keyfile", str(tls.server_key), "--enable-supernode-auth",
                 "--port", str(self.port), "--disable-runtime-dependency-installation"], "superlink.log"))
            wait_for_port(self.port, 60)
            self.relay = CountingRelay(self.port).start()
            for i, (private, public) in enumerate(tls.node_keys):
                self.register(public)
                node = toml_pairs(self.creds.node_config(i, self.mode, self.data[i] if self.data else None), " ")
                args = [self.bin["flower-supernode"], "--root-certificates", str(tls.ca_certificate),
                        "--auth-supernode-private-key", str(private), "--superlink", f"127.0.0.1:{self.relay.port}",
                        "--port", str(free_port()), "--node-config", node]
                self.processes.append(self._start(args, f"supernode{i}.log"))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def register(self, public_key: Path) -> None:
        """Register a SuperNode's public key with the SuperLink (``flwr supernode register``), the only way a
        SuperNode may connect once the SuperLink runs ``--enable-supernode-auth``."""
        done = subprocess.run([self.bin["flwr"], "supernode", "register", str(public_key), "local"], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"flwr supernode register {public_key} failed ({done.returncode}): "
                               f"{(done.stdout + done.stderr)[-2000:]}")

    def run(self, params: Path, out: Path, timeout: float) -> subprocess.CompletedProcess:
        """``flwr run`` the federation's apps in the deployment's mode; returns once ``out`` (the ServerApp's
        history) is written. TimeoutError after ``timeout`` seconds; RuntimeError if ``flwr run`` fails."""
        app = self.workdir / "app"
        app.mkdir(exist_ok=True)
        config = {**self.creds.run_config(params, self.mode, out), "round-timeout": float(timeout)}
        (app / "pyproject.toml").write_text(APP_TOML.format(config=toml_pairs(config, "\n")))
        done = subprocess.run([self.bin["flwr"], "run", str(app), "local"], env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"flwr run failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
        deadline = time.monotonic() + timeout
        while not Path(out).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the ServerApp wrote no history to {out} within {timeout:.0f} s; logs in {self.workdir}")
            time.sleep(0.5)
        return done

    def restart(self, institution: int) -> None:
        """Stop institution ``institution``'s SuperNode (and what it started) and start it again with the same key
        and node config, as an institution's machine that rebooted: the SuperLink knows it by its key, but its
        state (the global model, the key exchange) is gone."""
        old = self.processes[institution + 1]
        _stop(self.descendants([old]))
        old.wait(timeout=10)
        self.processes[institution + 1] = self._start(list(old.args), f"supernode{institution}.log")

    def descendants(self, processes: list[subprocess.Popen] | None = None) -> list[psutil.Process]:
        """Every live process started here (or of ``processes``), with its descendants (the SuperLink and SuperNodes
        start ``flower-superexec``, ``flwr-serverapp`` and ``flwr-clientapp`` in sessions of their own)."""
        found = []
        for p in self.processes if processes is None else processes:
            try:
                root = psutil.Process(p.pid)
                found += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return found

    def stop(self) -> None:
        """SIGTERM every process started here and its descendants, SIGKILL what is left after 10 s."""
        _stop(self.descendants())
        for p in self.processes:
            p.wait(timeout=10)
        self.processes.clear()
        if self.relay is not None:
            self.relay.close()


def _stop(procs: list[psutil.Process]) -> None:
    """SIGTERM ``procs``, SIGKILL what is left after 10 s."""
    for proc in procs:
        _signal(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=10)


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        return


def measure(params_file: Path, params: Params, modes: list[str], workdir: Path, timeout: float) -> dict:
    """Run the federation of ``params_file`` (``params``) once per mode in deployment mode: one SuperNode per
    institution, each reading only its own data file, fresh credentials and TLS files under ``workdir``. Returns per mode, per round: ``round_wall_seconds`` (the server's,
    from sending the train messages to the last evaluate reply), ``bytes_on_wire`` (what the relay carried in the
    round both ways, round 1 from the key exchange on), ``payload_bytes`` (the server's count of serialized payloads,
    the in-process stage's ``bytes_on_wire``), ``accuracy``, ``accepted``; and ``run_bytes``, everything the relay
    carried from the first SuperNode's connection to the end (app bundle and heartbeats too)."""
    out, institutions = {}, params.data.protocol.institutions
    data = write_partitions(local.dataset(params), institutions, Path(workdir) / "institutions")
    for mode in modes:
        print(f"deployment: {mode}, {institutions} SuperNodes", flush=True)
        where = Path(workdir) / mode
        where.mkdir(parents=True, exist_ok=True)
        creds = write_credentials(where / "credentials", institutions, params.federated.ckks)
        deployment = LocalDeployment(where, creds, mode, data)
        history = where / "history.json"
        with deployment:
            deployment.run(params_file, history, timeout)
            rows = json.loads(history.read_text())["rounds"]
            out[mode] = {"round_wall_seconds": [r["round_wall_seconds"] for r in rows],
                         "bytes_on_wire": [deployment.relay.between(r["started_at"], r["ended_at"]) for r in rows],
                         "payload_bytes": [r["bytes_on_wire"] for r in rows],
                         "accuracy": [r["accuracy"] for r in rows], "accepted": [r["accepted"] for r in rows],
                         "run_bytes": deployment.relay.total()}
        print(f"deployment: {mode}: {out[mode]['round_wall_seconds']} s a round, {out[mode]['bytes_on_wire']} bytes",
              flush=True)
    return out
