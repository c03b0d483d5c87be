"""The compute device of every stage, from ``params.device``."""

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
