"""What an institution does locally, and the centralized reference that trains the same way.

The federated part of the recognizer is the shared embedding network, the FaceModel (the patent's
encoder ``ae_encoder`` + embedding layer, as in the ``supervised`` stage): every floating-point entry of
its state dict (weights and BatchNorm statistics) is flattened into one float64 (P,) vector
(:func:`shared_vector`). Each institution's identity head (ArcFace by default) covers only its own
customers (identities are disjoint across institutions) and never leaves it.

Local training reuses :func:`benchmark.train.loop.train_supervised` for exactly ``local_epochs`` epochs
(no early stop), seeded by (seed, round, institution), so two runs from the same global weights make the
same update. The update an institution shares is ``new - global`` (the "gradient" of the source).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.config import FederatedConfig, Params
from benchmark.device import resolve
from benchmark.evaluation.verification import verification_report
from benchmark.models.face_model import FaceModel
from benchmark.models.heads import Head
from benchmark.models.registry import create_head
from benchmark.train.common import TrainConfig
from benchmark.train.loop import train_supervised
from benchmark.data.align import Geometry
from benchmark.data.dataset import Dataset, data_geometry, load_dataset
from benchmark.train.recipe import build_model, pair_scores, pretrained_cache, train_config

VERIFICATION_KEYS = ("accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "threshold")


def _float_keys(model: FaceModel) -> list[str]:
    return [k for k, v in model.state_dict().items() if v.is_floating_point()]


def shared_vector(model: FaceModel) -> np.ndarray:
    """The shared network's floating-point state as one float64 (P,) vector."""
    state = model.state_dict()
    return np.concatenate([state[k].detach().cpu().double().flatten().numpy() for k in _float_keys(model)])


@functools.lru_cache(maxsize=2)
def statistics_mask(params: Params) -> np.ndarray:
    """(P,) bool over :func:`shared_vector`'s entries: True where they are BatchNorm running statistics (buffers),
    False where they are trained weights; of the shared network ``params`` describes."""
    model = new_model(params, data_geometry(params.data))
    buffers, state = dict(model.named_buffers()), model.state_dict()
    return np.concatenate([np.full(state[k].numel(), k in buffers) for k in _float_keys(model)])


def load_shared_vector(model: FaceModel, vector: np.ndarray) -> None:
    """Write a :func:`shared_vector` back into ``model`` (in place); a wrong length raises ValueError."""
    state, offset = model.state_dict(), 0
    keys = _float_keys(model)
    total = sum(state[k].numel() for k in keys)
    if len(vector) != total:
        raise ValueError(f"the shared vector has {len(vector)} values, the model needs {total}")
    for k in keys:
        n = state[k].numel()
        state[k].copy_(torch.from_numpy(np.asarray(vector[offset : offset + n])).view_as(state[k]))
        offset += n


@functools.lru_cache(maxsize=2)
def _cached_dataset(params: Params, stamp: float) -> Dataset:
    del stamp
    return load_dataset(params)


def dataset(params: Params) -> Dataset:
    """The data stage's faces and protocol, read once per process (reread when faces.npz changes)."""
    faces = Path(params.paths.artifacts) / "data" / "faces.npz"
    return _cached_dataset(params, faces.stat().st_mtime)


def institution_images(data: Dataset, institution: int, images: str) -> np.ndarray:
    """Indices of institution ``institution``'s training images (``images``: all | labelled)."""
    idx = np.flatnonzero(data.protocol.institution == institution)
    if images == "labelled":
        idx = np.intersect1d(idx, data.protocol.labelled)
    if len(idx) == 0:
        raise ValueError(f"institution {institution} holds no training image (federated.images = {images!r})")
    return idx


def union_images(data: Dataset, images: str) -> np.ndarray:
    """Every institution's training images together (the centralized reference's data)."""
    k = int(data.protocol.institution.max()) + 1
    return np.sort(np.concatenate([institution_images(data, i, images) for i in range(k)]))


def new_model(params: Params, geometry: Geometry) -> FaceModel:
    """The shared network with the preset initial parameters (seeded by ``params.seed``, or FaceNet's weights with
    ``federated.init: facenet_casia``) for crops cut as ``geometry``, on ``params.device``."""
    return build_model(params.federated, geometry, params.seed, pretrained_cache(params)).to(resolve(params.device))


def new_head(cfg: FederatedConfig, labels: np.ndarray, seed: int) -> Head:
    """A private identity head over the identities in ``labels``."""
    return create_head(cfg.head, embedding_dim=cfg.embedding_dim, num_classes=len(np.unique(labels)), seed=seed)


def local_config(params: Params, server_round: int, institution: int) -> TrainConfig:
    """TrainConfig of one round of local training: exactly ``local_epochs`` epochs, no progress bar."""
    cfg = params.federated
    base = train_config(cfg, seed=params.seed * 100_003 + server_round * 257 + institution)
    return dataclasses.replace(base, max_epochs=cfg.local_epochs, patience=cfg.local_epochs + 1, progress=False)


@dataclass
class LocalResult:
    """One round of local training: the update (P,), images used, seconds of training."""

    update: np.ndarray
    num_examples: int
    seconds: float


def train_round(
    model: FaceModel, head: Head, data: Dataset, idx: np.ndarray, cfg: TrainConfig
) -> LocalResult:
    """Train ``model`` (holding the global weights) and ``head`` on images ``idx``; returns the update.

    The loop's validation images (its loss curves; a round runs a fixed number of epochs) are the institution's
    own faces of the protocol's validation slice, never another institution's; an institution with none there
    logs on a few of its training images."""
    start = shared_vector(model)
    val = data.protocol.val[np.isin(data.labels[data.protocol.val], data.labels[idx])]
    history = train_supervised(model, head, data.images, data.labels, idx, val if len(val) else idx[:64], cfg)
    return LocalResult(shared_vector(model) - start, int(len(idx)), float(history["seconds"]))


def verify(model: FaceModel, data: Dataset) -> dict[str, float]:
    """Verification on the data stage's test pairs (10-fold accuracy, AUC, EER, TAR@FAR, threshold);
    only the images in the pairs are embedded."""
    p = data.protocol
    report = verification_report(pair_scores(model, data.images, p.pairs), p.is_same, p.folds)
    return {k: float(report[k]) for k in VERIFICATION_KEYS}
