"""Saving, loading and running trained face recognizers: the contract other stages code against.

* :func:`save_model` writes a :class:`~benchmark.models.face_model.FaceModel` (its constructor config,
  weights and a caller's ``meta`` dict) atomically (DESIGN.md, convention 10);
* :func:`load_model` rebuilds it, in eval mode, with ``embedding_dim`` and ``model_id``;
* :func:`embed_images` turns uint8 (N, H, W, 3) faces into L2-normalized float32 (N, D) embeddings;
* :func:`model_identity` names what makes two models' embeddings comparable: architecture, weights, crops.

A checkpoint is a ``torch.save`` dict of plain types and tensors (``format``, ``config``, ``model_id``,
``state_dict``, ``meta``), read back with ``weights_only=True`` (no pickled code runs on load).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark import io
from benchmark.data.align import Geometry
from benchmark.errors import DataError
from benchmark.models.face_model import FaceModel, to_float_nchw

FORMAT = "facebench.FaceModel/1"


def save_model(model: FaceModel, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write ``model`` and ``meta`` (JSON-like: str, numbers, lists, dicts) to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "config": model.config(),
        "model_id": model.model_id,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    with io.atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The raw checkpoint dict; a missing file or anything that is not a checkpoint raises ValueError naming it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model checkpoint '{p}' does not exist")
    expected = f"expected a file written by a training stage (format '{FORMAT}')"
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, KeyError,
            UnicodeDecodeError) as err:
        # torch's own message advises weights_only=False, which would run pickled code: never pass it on
        raise DataError(f"'{p}' is not a facebench model checkpoint (torch cannot read it: "
                        f"{type(err).__name__}); {expected}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"'{p}' is not a facebench model checkpoint; {expected}")
    return payload


def load_model(path: str | os.PathLike) -> FaceModel:
    """Rebuild the saved FaceModel, in eval mode; its ``meta`` dict is attached as ``model.meta``."""
    payload = load_checkpoint(path)
    cfg = payload["config"]
    model = FaceModel(
        cfg["backbone"], cfg["backbone_kwargs"], cfg["embedding_dim"], tuple(cfg["mean"]), tuple(cfg["std"]),
        cfg.get("input_size"), cfg.get("geometry"),
    )
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise DataError(f"checkpoint '{path}' does not match its recorded architecture {payload['model_id']} "
                        f"({first}); it was edited or written by another version: retrain it") from err
    model.meta = payload["meta"]
    return model.eval()


def embed_images(model: FaceModel, images: np.ndarray, batch_size: int = 256, flip: bool = False) -> np.ndarray:
    """uint8 (N, H, W, 3) RGB faces -> float32 (N, D) L2-normalized embeddings.

    flip: flip-test fusion, the field's default at evaluation: the embedding of the image plus that of its
    horizontal mirror, L2-normalized again (insightface ``eval/verification.py``).
    Runs in eval mode without gradients, ``batch_size`` images at a time, on the model's device, and
    restores the model's previous train/eval mode.
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = [_embed(model, to_float_nchw(images[i : i + batch_size]).to(device), flip).cpu()
                   for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, model.embedding_dim), np.float32)
    return torch.cat(out).numpy().astype(np.float32, copy=False)


def _embed(model: FaceModel, x: torch.Tensor, flip: bool) -> torch.Tensor:
    if not flip:
        return model.embed(x)
    return torch.nn.functional.normalize(model.forward(x) + model.forward(x.flip(3)), dim=1)


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 (hex) of the model's state dict: every entry's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_identity(model: FaceModel, geometry: Geometry) -> str:
    """What stored embeddings must match: ``<model_id> weights sha256:<16 hex digits> crops <geometry>``, e.g.
    ``ae_encoder(...)+emb128 weights sha256:1f0e... crops arcface 64px``. Two checkpoints of one architecture
    trained differently, or one model fed faces cut two ways, give different identities."""
    return f"{model.model_id} weights sha256:{weights_sha256(model)[:16]} crops {geometry.describe()}"
