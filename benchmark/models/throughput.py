"""Embedding throughput of the pretrained recognizer: the suite's path against a bare PyTorch forward.

:func:`embed_vs_bare` times :func:`~benchmark.models.checkpoint.embed_images` (uint8 faces in, L2-normalized
embeddings out: conversion to [0, 1], the model's own standardization, backbone, normalization) against
facenet-pytorch's own ``InceptionResnetV1.forward`` (it ends in the same L2 normalization) on the same faces
already as standardized float tensors, in the same process, interleaved, batch by batch. A benchmark, not a
test: the figure depends on the machine. One batch of each path runs untimed first (warm-up).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmark.models.checkpoint import embed_images
from benchmark.models.face_model import FaceModel, to_float_nchw


def embed_vs_bare(model: FaceModel, images: np.ndarray, batch_size: int = 32, repeats: int = 3) -> dict:
    """Images/s of the suite's embedding of ``images`` (uint8 (N, S, S, 3)) and of the bare network's forward.

    model: a FaceModel whose backbone wraps a facenet-pytorch network as ``backbone.net`` (``facenet_casia``).
    Each repeat runs both paths once over every batch, alternating which goes first; the medians are
    reported. Returns {"suite_images_per_second", "bare_images_per_second", "max_abs_difference" (the two
    paths' embeddings, a check that they compute the same thing), "images", "batch_size", "repeats"}.
    """
    if repeats < 1 or batch_size < 1:
        raise ValueError(f"repeats and batch_size must be >= 1, got {repeats} and {batch_size}")
    net = model.backbone.net.eval()
    model.eval()
    tensors = [model.normalize(to_float_nchw(images[i : i + batch_size]))
               for i in range(0, len(images), batch_size)]

    def suite() -> np.ndarray:
        return embed_images(model, images, batch_size=batch_size)

    def bare() -> np.ndarray:
        with torch.no_grad():
            return torch.cat([net(x) for x in tensors]).numpy()

    embed_images(model, images[:batch_size], batch_size=batch_size)  # warm-up: one untimed batch each
    with torch.no_grad():
        net(tensors[0])
    times: dict[str, list[float]] = {"suite": [], "bare": []}
    outputs: dict[str, np.ndarray] = {}
    for r in range(repeats):
        order = (("suite", suite), ("bare", bare)) if r % 2 == 0 else (("bare", bare), ("suite", suite))
        for name, run in order:
            start = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - start)
    return {
        "suite_images_per_second": len(images) / float(np.median(times["suite"])),
        "bare_images_per_second": len(images) / float(np.median(times["bare"])),
        "max_abs_difference": float(np.abs(outputs["suite"] - outputs["bare"]).max()),
        "images": int(len(images)),
        "batch_size": batch_size,
        "repeats": repeats,
    }
