"""How a training stage is set up from params.yaml, shared by the training and federated stages: the model for
the data's crops (from scratch or from the pretrained FaceNet), the loop's configuration, the images it trains on,
the validation identities' pairs, and the operating thresholds chosen on them (the checkpoint's
``meta["validation"]``).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np
import torch

from benchmark.config import Params, SupervisedConfig
from benchmark.data.align import Geometry
from benchmark.data.dataset import Dataset, load_dataset
from benchmark.data.protocol import Protocol
from benchmark.errors import DataError
from benchmark.evaluation.calibration import calibrate
from benchmark.evaluation.verification import cosine_scores
from benchmark.models.checkpoint import embed_images
from benchmark.models.face_model import FaceModel, build_face_model
from benchmark.models.facenet import GEOMETRY as FACENET_GEOMETRY
from benchmark.models.pretrained import pretrained_face_model
from benchmark.models.registry import BACKBONES
from benchmark.train.common import TrainConfig, ValPairs


def train_config(cfg: SupervisedConfig, seed: int) -> TrainConfig:
    """The loop's TrainConfig from a stage section of params.yaml."""
    keys = [f for f in TrainConfig.__dataclass_fields__ if hasattr(cfg, f)]
    return TrainConfig(**{k: getattr(cfg, k) for k in keys}, fine_tune=cfg.init != "scratch", seed=seed)


PRETRAINED_VARIANT = "pretrained"  # the converted FaceNet as is, evaluated and used like a trained variant


def pretrained_variant(params: Params, device: torch.device | str = "cpu") -> FaceModel:
    """The converted FaceNet as a variant, on ``device``: ``meta`` = ``{"init": "facenet_casia", "validation": ...}``,
    its thresholds chosen on the training source's validation pairs like a trained stage's (never on test pairs).
    DataError when the data stage cut the faces another way than FaceNet takes them."""
    model = pretrained_face_model(pretrained_cache(params)).to(device)
    data = load_dataset(params)
    check_crops(model, data.geometry.describe(), "the training source")
    model.meta = {"init": "facenet_casia", "validation": validation_meta(model, val_pairs(data))}
    return model


def check_crops(model: FaceModel, geometry: str, what: str) -> None:
    """DataError naming both when ``model`` takes faces cut another way than ``geometry`` (the crops of ``what``)."""
    expected = model.crop_geometry
    if expected is not None and expected.describe() != geometry:
        raise DataError(f"{model.backbone_name} takes faces cut as {expected.describe()}, but {what} was cut as "
                        f"{geometry}: set data.image_size, data.alignment and data.box_margin to match and rerun "
                        "the data stage")


def pretrained_cache(params: Params) -> Path:
    """Where the converted pretrained weights are kept: ``<artifacts>/pretrained``."""
    return Path(params.paths.artifacts) / "pretrained"


def build_model(cfg: SupervisedConfig, geometry: Geometry, seed: int, cache_dir: str | os.PathLike) -> FaceModel:
    """The stage's FaceModel for crops cut as ``geometry``: seeded random weights (``init: scratch``; backbones
    whose factory takes ``image_size`` get it) or the pretrained FaceNet to fine-tune (``init: facenet_casia``,
    its converted weights cached in ``cache_dir``), which needs faces cut as FaceNet's geometry."""
    if cfg.init == "facenet_casia":
        if geometry != FACENET_GEOMETRY:
            raise DataError(f"init 'facenet_casia' fine-tunes FaceNet, which takes faces cut as "
                            f"{FACENET_GEOMETRY.describe()}; the data stage cut {geometry.describe()}: set "
                            f"data.image_size {FACENET_GEOMETRY.size}, data.alignment {FACENET_GEOMETRY.policy}, "
                            f"data.box_margin {FACENET_GEOMETRY.margin}")
        return pretrained_face_model(cache_dir).train()
    takes_size = "image_size" in inspect.signature(BACKBONES.get(cfg.backbone)).parameters
    kwargs = {"image_size": geometry.size} if takes_size else {}
    return build_face_model(cfg.backbone, seed=seed, embedding_dim=cfg.embedding_dim, input_size=geometry.size,
                            geometry=geometry.describe(), **kwargs)


def pair_scores(model: FaceModel, images: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine scores of ``pairs`` (P, 2 indices into ``images``), embedding only the images the pairs use."""
    used, inverse = np.unique(pairs, return_inverse=True)
    return cosine_scores(embed_images(model, images[used]), inverse.reshape(pairs.shape))


def val_pairs(data: Dataset) -> ValPairs:
    """The validation identities' pairs, with only the images they use."""
    p = data.protocol
    used, inverse = np.unique(p.val_pairs, return_inverse=True)
    return ValPairs(data.images[used], inverse.reshape(p.val_pairs.shape), p.val_is_same)


def validation_meta(model: FaceModel, pairs: ValPairs) -> dict:
    """The operating thresholds of ``model`` chosen on validation pairs (:func:`calibrate`), for plain
    embeddings (``plain``, what attacks use) and flip-test fusion (``flip``), with the scores kept so any FAR's
    threshold can be derived later (``scores``/``is_same`` per mode)."""
    out: dict = {"pairs": int(len(pairs.pairs)), "is_same": pairs.is_same.astype(int).tolist()}
    for mode, flip in (("plain", False), ("flip", True)):
        scores = cosine_scores(embed_images(model, pairs.images, flip=flip), pairs.pairs)
        out[mode] = {**calibrate(scores, pairs.is_same), "scores": np.round(scores, 6).tolist()}
    return out


def training_images(cfg: SupervisedConfig, p: Protocol) -> np.ndarray:
    """The images a supervised stage trains on: every training image, or the labelled ones (``cfg.images``)."""
    return p.train if cfg.images == "all" else p.labelled
