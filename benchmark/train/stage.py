"""The training stages: ``supervised``, ``semisupervised``, ``timm_reference``, and the adversarial ones:
``adversarial`` (the patent CN116665282A's gated hardening), ``pgd_at`` and ``trades`` (its baselines).

Each reads the data stage's faces and protocol, trains on the labelled training images (the
semi-supervised stage also on the unlabelled ones), evaluates verification on the test pairs with the
shared protocol, and writes (atomically):

* ``<artifacts>/models/<stage>.pt``: the FaceModel (checkpoint.load_model reads it back);
* ``<reports>/metrics/<stage>.json``: ``verification`` (accuracy_mean, accuracy_std, auc, eer,
  tar_at_far_1e-2, tar_at_far_1e-3), ``train_seconds``, ``epochs``, ``params`` (parameter count of the
  recognition model), ``converged_at``, ``images_per_second``;
* ``<reports>/plots/<stage>_curves.json``: per-epoch train/val losses (for ``dvc plots``).

The adversarial stages add ``adversarial_fraction`` (share of steps with the term on / adversarial
batches) and ``switches`` (gate switches; 0 for the static baselines) to the metrics, and the gated stage
writes ``<reports>/plots/<stage>_gate.json`` (per step: source loss, threshold, on) and
``<reports>/plots/<stage>_switches.json`` (every switch: step, loss, on).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark import io
from benchmark.config import (
    AdversarialTrainingConfig,
    HardenedConfig,
    Params,
    SemiSupervisedConfig,
    SupervisedConfig,
    TradesConfig,
    as_dict,
)
from benchmark.data.protocol import Protocol
from benchmark.evaluation.verification import cosine_scores, verification_report
from benchmark.models.autoencoder import SemiSupervisedAE
from benchmark.models.checkpoint import embed_images, save_model
from benchmark.models.face_model import FaceModel, build_face_model
from benchmark.models.registry import BACKBONES, create_head
from benchmark.models.heads import Head
from benchmark.train.adversarial import train_hardened, train_pgd_at, train_trades
from benchmark.train.common import TrainConfig
from benchmark.train.gate import PerformanceGate
from benchmark.train.hardening import HardeningTerm
from benchmark.train.loop import train_semisupervised, train_supervised

STAGES = ("supervised", "semisupervised", "timm_reference", "adversarial", "pgd_at", "trades")


@dataclass
class Dataset:
    """The data stage's outputs: images uint8 (N, H, W, 3), labels (N,), the protocol."""

    images: np.ndarray
    labels: np.ndarray
    protocol: Protocol


def load_dataset(params: Params) -> Dataset:
    """Read ``<artifacts>/data/faces.npz`` and ``protocol.npz``."""
    folder = Path(params.paths.artifacts) / "data"
    with np.load(folder / "faces.npz") as faces, np.load(folder / "protocol.npz") as proto:
        return Dataset(faces["images"], faces["labels"], Protocol.from_arrays(dict(proto)))


@dataclass
class TrainResult:
    """The trained model, its training history, test-pair scores, metrics, and the protocol used."""

    model: FaceModel
    history: dict
    scores: np.ndarray
    metrics: dict
    protocol: Protocol


def train_config(cfg: SupervisedConfig, seed: int) -> TrainConfig:
    """The loop's TrainConfig from a stage section of params.yaml."""
    keys = [f for f in TrainConfig.__dataclass_fields__ if hasattr(cfg, f)]
    return TrainConfig(**{k: getattr(cfg, k) for k in keys}, seed=seed)


def build_model(cfg: SupervisedConfig, image_size: int, seed: int) -> FaceModel:
    """The stage's FaceModel; backbones whose factory takes ``image_size`` get the data's crop size."""
    takes_size = "image_size" in inspect.signature(BACKBONES.get(cfg.backbone)).parameters
    kwargs = {"image_size": image_size} if takes_size else {}
    return build_face_model(cfg.backbone, seed=seed, embedding_dim=cfg.embedding_dim, **kwargs)


def run(stage: str, params: Params, data: Dataset | None = None) -> TrainResult:
    """Train and evaluate one stage (a name in :data:`STAGES`) with validated ``params``."""
    if stage not in STAGES:
        raise ValueError(f"unknown training stage '{stage}'; choose one of: {', '.join(STAGES)}")
    cfg: SupervisedConfig = getattr(params, stage)
    data = data or load_dataset(params)
    p, seed = data.protocol, params.seed
    torch.manual_seed(seed)
    model = build_model(cfg, data.images.shape[1], seed)
    head = create_head(cfg.head, embedding_dim=cfg.embedding_dim, num_classes=len(np.unique(data.labels[p.labelled])), seed=seed)
    loop_cfg = train_config(cfg, seed)
    if isinstance(cfg, SemiSupervisedConfig):
        history = train_semisupervised(
            SemiSupervisedAE(model), head, data.images, data.labels, p.labelled, p.unlabelled, p.val, loop_cfg
        )
    elif isinstance(cfg, AdversarialTrainingConfig):
        history = train_adversarial(cfg, model, head, data, loop_cfg)
    else:
        # Epochs as long as the semi-supervised stage's (one pass over the larger of the labelled and
        # unlabelled sets), so both see the same number of steps whatever label_fraction is.
        epoch_images = max(len(p.labelled), len(p.unlabelled))
        history = train_supervised(model, head, data.images, data.labels, p.labelled, p.val, loop_cfg, epoch_images=epoch_images)

    scores = cosine_scores(embed_images(model, data.images), p.pairs)
    report = verification_report(scores, p.is_same, p.folds)
    keys = ("accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "threshold")
    metrics = {
        "verification": {k: report[k] for k in keys},
        "train_seconds": round(history["train_seconds"], 2),
        "epochs": history["epochs"],
        "params": sum(t.numel() for t in model.parameters()),
        "converged_at": history["converged_at"],
        "images_per_second": round(history["images_per_second"], 1),
        "labelled_images": int(len(p.labelled)),
        "unlabelled_images": int(len(p.unlabelled)) if isinstance(cfg, SemiSupervisedConfig) else 0,
    }
    artifacts, reports = Path(params.paths.artifacts), Path(params.paths.reports)
    if isinstance(cfg, AdversarialTrainingConfig):
        gate = history.get("gate")
        metrics["adversarial_fraction"] = round(history["adversarial_fraction"], 4)
        metrics["switches"] = len(gate["switches"]) if gate else 0
        if gate:
            io.write_json(reports / "plots" / f"{stage}_gate.json", gate_rows(gate))
            io.write_json(reports / "plots" / f"{stage}_switches.json", gate["switches"])
    save_model(model, artifacts / "models" / f"{stage}.pt", {"stage": stage, "config": as_dict(cfg), "seed": seed, **metrics})
    io.write_json(reports / "plots" / f"{stage}_curves.json", curve_rows(history))
    io.write_json(reports / "metrics" / f"{stage}.json", metrics)
    return TrainResult(model, history, scores, metrics, p)


def train_adversarial(
    cfg: AdversarialTrainingConfig, model: FaceModel, head: Head, data: Dataset, loop_cfg: TrainConfig
) -> dict:
    """Train an adversarial stage on the labelled images, with the supervised stage's epoch length:
    the gated hardening for a :class:`HardenedConfig`, TRADES for a :class:`TradesConfig`, else PGD-AT."""
    p = data.protocol
    args = (model, head, data.images, data.labels, p.labelled, p.val, loop_cfg, cfg.eps, cfg.attack_steps)
    epoch_images = max(len(p.labelled), len(p.unlabelled))
    if isinstance(cfg, HardenedConfig):
        term = HardeningTerm(cfg.beta, cfg.gamma, cfg.margin)
        gate = PerformanceGate(cfg.threshold, cfg.hysteresis)
        return train_hardened(*args, term, gate, epoch_images=epoch_images)
    if isinstance(cfg, TradesConfig):
        return train_trades(*args, cfg.beta, epoch_images=epoch_images)
    return train_pgd_at(*args, epoch_images=epoch_images)


def gate_rows(gate: dict) -> list[dict]:
    """Per-step rows ``{"step", "loss", "threshold", "on"}`` of a gate log, for ``dvc plots``."""
    return [
        {"step": i + 1, "loss": loss, "threshold": gate["threshold"], "on": on}
        for i, (loss, on) in enumerate(zip(gate["loss"], gate["on"]))
    ]


def curve_rows(history: dict) -> list[dict]:
    """Per-epoch rows ``{"epoch", "<loss>_train", "<loss>_val", ...}`` for ``dvc plots``."""
    rows = []
    for e in range(history["epochs"]):
        row = {"epoch": e + 1}
        for name, curve in history["curves"].items():
            for split in ("train", "val"):
                if e < len(curve.get(split, [])):
                    row[f"{name}_{split}"] = curve[split][e]
        rows.append(row)
    return rows
