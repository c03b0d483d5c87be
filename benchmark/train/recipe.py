"""How a training stage is set up from params.yaml, shared by the training and federated stages: the model for
a crop size, the loop's configuration, the images it trains on, the validation identities' pairs, and the
operating thresholds chosen on them (the checkpoint's ``meta["validation"]``).
"""

from __future__ import annotations

import inspect

import numpy as np

from benchmark.config import SupervisedConfig
from benchmark.data.dataset import Dataset
from benchmark.data.protocol import Protocol
from benchmark.evaluation.calibration import calibrate
from benchmark.evaluation.verification import cosine_scores
from benchmark.models.checkpoint import embed_images
from benchmark.models.face_model import FaceModel, build_face_model
from benchmark.models.registry import BACKBONES
from benchmark.train.common import TrainConfig, ValPairs


def train_config(cfg: SupervisedConfig, seed: int) -> TrainConfig:
    """The loop's TrainConfig from a stage section of params.yaml."""
    keys = [f for f in TrainConfig.__dataclass_fields__ if hasattr(cfg, f)]
    return TrainConfig(**{k: getattr(cfg, k) for k in keys}, seed=seed)


def build_model(cfg: SupervisedConfig, image_size: int, seed: int) -> FaceModel:
    """The stage's FaceModel for ``image_size`` crops; backbones whose factory takes ``image_size`` get it."""
    takes_size = "image_size" in inspect.signature(BACKBONES.get(cfg.backbone)).parameters
    kwargs = {"image_size": image_size} if takes_size else {}
    return build_face_model(cfg.backbone, seed=seed, embedding_dim=cfg.embedding_dim, input_size=image_size, **kwargs)


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
