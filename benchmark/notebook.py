"""Running a pipeline notebook: papermill with only the parameters the notebook declares.

Every stage reads its values from params.yaml; papermill, given the whole file, warns "Passed unknown parameter"
once per section a notebook does not declare, so only the declared ones are passed. The kernel talks to
papermill over IPC sockets in a private temporary folder instead of localhost TCP, which ipykernel warns is
unencrypted (any local user could read or drive the kernel).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import papermill
from traitlets.config import Config

from benchmark.errors import ConfigError


def declared(notebook: str | os.PathLike) -> set[str]:
    """The parameter names of ``notebook``'s cell tagged ``parameters``."""
    return set(papermill.inspect_notebook(str(notebook)))


def run(notebook: str | os.PathLike, output: str | os.PathLike, values: dict[str, Any],
        overrides: dict[str, Any] | None = None) -> None:
    """Execute ``notebook`` into ``output`` (its folder made if missing) with the entries of ``values`` it
    declares, then ``overrides`` (each must be declared: ConfigError naming it and the declared ones)."""
    names = declared(notebook)
    overrides = overrides or {}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"{notebook}: no parameter {', '.join(map(repr, unknown))}; "
                          f"it declares {', '.join(sorted(names)) or 'none'}")
    parameters = {key: value for key, value in values.items() if key in names} | overrides
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="facebench-kernel-") as sockets:
        kernel = Config()
        kernel.KernelManager.transport = "ipc"
        kernel.KernelManager.ip = str(Path(sockets) / "kernel")
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters, config=kernel)
