"""Data parallelism for the training stages under ``torchrun``: PyTorch's DistributedDataParallel (DDP).

``torchrun --nproc_per_node N --no-python facebench train STAGE`` starts N processes (one per GPU, or N CPU
processes); each joins torchrun's process group (:func:`start`: NCCL on CUDA, gloo on the CPU) and runs the stage.
Launched any other way, every function here is the single-process identity and nothing changes.

What N processes compute is what one process computes on the same global batches:

* every process draws the same global batch (same seed, same sampling and augmentation generator) and keeps its
  contiguous 1/N share (:func:`shard`; the batch size must divide by N);
* DDP averages the gradients over the processes (:func:`data_parallel`), which for mean losses over equal shares is
  the gradient of the global batch's mean loss;
* every BatchNorm layer normalizes training batches with the global batch's mean and variance, gathered over the
  processes with a differentiable all-reduce (:func:`global_batch_norm`; PyTorch's SyncBatchNorm does the same on
  GPUs only), so its output, its running statistics and its gradients are the single-process ones;
* validation runs whole in every process on identical weights, so early stopping, the kept epoch and the gated
  hardening's switch (fed :func:`mean` of its batch loss) decide the same everywhere; logged training losses are
  averaged over the processes (:func:`means`).

The N-process model therefore equals the single-process one up to floating-point summation order
(:mod:`benchmark.train.ddp_check` measures the difference). Only process 0 shows progress and writes files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def launched() -> bool:
    """Whether torchrun started this process as one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: torch.device) -> None:
    """Join torchrun's process group when :func:`launched` (NCCL when ``device`` is CUDA, each process on GPU
    ``LOCAL_RANK``; gloo on the CPU); nothing otherwise or when already joined."""
    if not launched() or active():
        return
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def stop() -> None:
    """Leave the process group (when joined)."""
    if active():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Process 0 (or the only process): the one that shows progress and writes."""
    return rank() == 0


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This process's contiguous 1/N share of a global batch (the batch itself in one process); a ValueError
    when the batch does not split evenly."""
    n = world_size()
    if n == 1:
        return batch
    if len(batch) % n:
        raise ValueError(f"a batch of {len(batch)} does not split evenly over {n} processes; "
                         f"use a batch_size divisible by {n}")
    size = len(batch) // n
    return batch[rank() * size:(rank() + 1) * size]


def means(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the processes (the values themselves in one process)."""
    if not active() or not values:
        return values
    keys = sorted(values)
    total = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(total)
    return {k: v / world_size() for k, v in zip(keys, total.tolist())}


def mean(value: float) -> float:
    """``value`` averaged over the processes."""
    return means({"value": value})["value"]


class _Step(nn.Module):
    """The modules one training step uses, as one module whose forward runs the step: DDP wraps this."""

    def __init__(self, modules: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(modules)

    def forward(self, step: Callable[[], tuple]) -> tuple:
        return step()


@contextmanager
def data_parallel(modules: list[nn.Module], find_unused: bool = False) -> Iterator[Callable[[Callable], tuple]]:
    """Yield ``run(step)``, which runs a training step whose gradients DDP averages over the processes, with every
    BatchNorm of ``modules`` normalizing over the global batch (:func:`global_batch_norm`); in one process
    ``run(step)`` is ``step()``. find_unused: some parameters may get no gradient in a step (a frozen body).
    The BatchNorm layers are restored on exit."""
    if not active():
        yield lambda step: step()
        return
    norms = [m for module in modules for m in module.modules() if isinstance(m, BATCH_NORMS)]
    for norm in norms:
        norm.forward = partial(global_batch_norm, norm)
    device = next(modules[0].parameters()).device
    ddp = DistributedDataParallel(_Step(modules), device_ids=[device] if device.type == "cuda" else None,
                                  forward_sync_buffers=False, find_unused_parameters=find_unused)
    try:
        yield ddp
    finally:
        for norm in norms:
            del norm.forward


class SumOverProcesses(torch.autograd.Function):
    """A tensor summed over the processes; its gradient is the sum over the processes of theirs (every process's
    loss depends on every share through the sum)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def global_batch_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``norm`` (a BatchNorm layer) applied to this process's share ``x`` with the global batch's statistics in
    training mode: mean, then variance of the centred values, each summed over the processes by a differentiable
    all-reduce (whose backward sums the gradients too); running statistics updated as BatchNorm does (unbiased
    variance). Evaluation mode is the layer's own forward."""
    if not norm.training:
        return type(norm).forward(norm, x)
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    x32 = x.float()
    count = torch.tensor([x32.numel() / x32.shape[1]], device=x.device)
    total = SumOverProcesses.apply(torch.cat([x32.sum(dims), count]))
    n = total[-1]
    mean = total[:-1] / n
    centred = x32 - mean.view(shape)
    var = SumOverProcesses.apply(centred.pow(2).sum(dims)) / n
    if norm.track_running_stats:
        with torch.no_grad():
            norm.num_batches_tracked += 1
            momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
            norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), momentum)
            norm.running_var.lerp_((var * n / (n - 1)).to(norm.running_var.dtype), momentum)
    out = centred * torch.rsqrt(var + norm.eps).view(shape)
    if norm.affine:
        out = out * norm.weight.view(shape) + norm.bias.view(shape)
    return out.to(x.dtype)
