"""Does a 2-process torchrun (DDP, gloo on the CPU) train the model one process trains? ``facebench perf``'s
``ddp_2proc_matches_single`` and the test of :mod:`benchmark.train.distributed`.

:func:`weight_difference` makes a small synthetic workspace (the tiny preset's params.yaml and data stage), trains a stage
once in this process and once as ``torchrun --standalone --nproc_per_node N -m benchmark.cli train STAGE`` on the
same seed, and so the same global batches, and compares the two saved models: the largest absolute difference
over every parameter and buffer, beside how far training moved the weights from their start (the scale the
difference is small against).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from benchmark import config, presets
from benchmark.data import stage as data_stage
from benchmark.data.dataset import load_dataset
from benchmark.models.checkpoint import load_model
from benchmark.train import stage as train_stage
from benchmark.train.recipe import build_model, pretrained_cache


def workspace(root: Path) -> Path:
    """Write ``root/params.yaml`` (the tiny preset on the CPU: tiny synthetic data, 2 epochs) and run its data stage;
    returns the params path."""
    paths = {"artifacts": str(root / "artifacts"), "reports": str(root / "reports")}
    raw = presets.apply({}, "tiny", {"device": "cpu", "paths": paths})
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    data_stage.run(config.load(path))
    return path


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's floating-point parameters and buffers (BatchNorm's batch counters left out)."""
    return {k: v.detach().float() for k, v in model.state_dict().items() if v.is_floating_point()}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two state dicts with the same keys."""
    if a.keys() != b.keys():
        raise ValueError(f"the models differ in their tensors: {sorted(a.keys() ^ b.keys())[:5]}")
    return max(float((a[k] - b[k]).abs().max()) for k in a if a[k].numel())


def weight_difference(root: Path, stage: str = "supervised", processes: int = 2, timeout: float = 900) -> dict:
    """Train ``stage`` in one process and under torchrun with ``processes`` processes in the workspace at ``root``
    (made by :func:`workspace` when it has no params.yaml). Returns ``max_abs_difference`` (N processes vs one),
    ``trained_distance`` (largest absolute change of any weight from its initialization in the one-process run),
    and the seconds of both runs. An OSError with torchrun's last output when it fails."""
    path = root / "params.yaml"
    if not path.is_file():
        workspace(root)
    params = config.load(path)
    start = state(build_model(getattr(params, stage), load_dataset(params).geometry, params.seed,
                              pretrained_cache(params)))
    tick = time.perf_counter()
    single = state(train_stage.run(stage, params).model)
    single_seconds = time.perf_counter() - tick
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "benchmark.cli", "train", stage, "--params", str(path)]
    tick = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    ddp_seconds = time.perf_counter() - tick
    if done.returncode:
        raise OSError(f"torchrun {stage} with {processes} processes failed (rc {done.returncode}): "
                      f"{(done.stderr or done.stdout)[-2000:]}")
    parallel = state(load_model(Path(params.paths.artifacts) / "models" / f"{stage}.pt"))
    return {"max_abs_difference": max_difference(single, parallel), "trained_distance": max_difference(single, start),
            "processes": processes, "stage": stage, "single_seconds": single_seconds, "ddp_seconds": ddp_seconds}
