"""The compute device of every stage, from ``params.device``, and the training precisions it can run."""

from __future__ import annotations

import torch

from benchmark.errors import ConfigError


def resolve(name: str) -> torch.device:
    """``auto`` -> CUDA when torch sees a CUDA device, else the CPU; ``cpu`` as given; ``cuda`` without a CUDA
    device is a ConfigError saying what torch sees and what to write instead."""
    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if available else "cpu")
    if name == "cuda" and not available:
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        raise ConfigError(f"device: cuda, but torch {torch.__version__} ({built}) sees no CUDA device; "
                          "use device: auto or device: cpu")
    return torch.device(name)


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # name -> autocast dtype


def check_precision(precision: str, device: torch.device) -> None:
    """ConfigError when ``precision`` (a key of :data:`PRECISIONS`) cannot run on ``device``: fp16 needs CUDA."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} not allowed; choose one of: {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision: fp16 needs a CUDA device (float16 autocast with a gradient scaler), "
                          f"but the stage runs on {device.type}; use precision: bf16 or fp32 there")
