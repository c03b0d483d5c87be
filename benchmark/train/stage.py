"""The training stages: ``supervised``, ``semisupervised``, ``timm_reference``, and the adversarial ones:
``adversarial`` (the patent CN116665282A's gated hardening), ``pgd_at``, ``trades`` and ``natural_then_at`` (its
baselines).

Each reads the data stage's training source and protocol, trains on the training images (``images: all``)
or on the labelled ones only (``images: labelled``, the semi-supervised study's baseline; the semi-supervised
stage always takes the labelled images for LossA and the unlabelled ones for LossB), stops early on the
verification accuracy of the validation identities' pairs and keeps the best epoch (the adversarial stages
keep the last), chooses its operating thresholds on those validation pairs, measures verification on the
training source's test pairs, and writes (atomically):

* ``<artifacts>/models/<stage>.pt``: the FaceModel (checkpoint.load_model reads it back); its meta holds
  ``validation`` (:func:`validation_meta`: the thresholds every consumer deploys the model with);
* ``<reports>/metrics/<stage>.json``: ``verification`` (accuracy_mean, accuracy_std, auc, eer,
  tar_at_far_1e-2, tar_at_far_1e-3 on the test pairs), ``validation`` (threshold, accuracy, thresholds at
  FAR), ``train_seconds``, ``epochs``, ``params`` (parameter count of the recognition model),
  ``converged_at``, ``best_epoch``, ``kept_epoch`` (0: a fine-tuned stage kept its pretrained start),
  ``start_val_accuracy`` (the pretrained start's validation accuracy; None from scratch), ``images_per_second``;
* ``<reports>/plots/<stage>_curves.json``: per-epoch train/val losses (for ``dvc plots``).

Launched by ``torchrun`` (``facebench train STAGE``), the stage trains data-parallel over the processes
(:mod:`benchmark.train.distributed`) and process 0 writes the same files.

The adversarial stages add to ``validation`` the ``robust_accuracy`` of PGD-10 at their training budget on
``validation_attack_pairs`` validation pairs (what ``make tune`` chooses their hyperparameters on) and, when
:func:`run` is asked for it (``make gate-sweep``'s runs; the DAG's stages leave it to the sweep file, whose point at their
setting the report checks against them), the evaluation's ``worst_case_robust_accuracy`` at 4/255 on the same pairs (what ``make gate-sweep``
places on the cost front), ``passes`` (forward+backward passes of the training steps, :mod:`benchmark.train.adversarial`),
the gate's ``threshold`` or natural_then_at's ``switch``, ``adversarial_fraction`` (share of steps with the term on / adversarial
batches) and ``switches`` (gate switches; 0 for the static baselines) to the metrics, and the gated stage
writes ``<reports>/plots/<stage>_gate.json`` (per step: source loss, threshold, on) and
``<reports>/plots/<stage>_switches.json`` (every switch: step, loss, on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark import io
from benchmark.config import (
    AdversarialTrainingConfig,
    HardenedConfig,
    NaturalThenATConfig,
    Params,
    SemiSupervisedConfig,
    SupervisedConfig,
    TradesConfig,
    as_dict,
)
from benchmark.device import check_precision, resolve
from benchmark.errors import ConfigError
from benchmark.data.dataset import Dataset, load_dataset
from benchmark.data.protocol import Protocol, relabelled
from benchmark.evaluation.robustness_runner import pgd_robust_accuracy, worst_case_robust_accuracy
from benchmark.evaluation.verification import kfold_correct, verification_report
from benchmark.models.autoencoder import SemiSupervisedAE
from benchmark.models.checkpoint import save_model
from benchmark.models.face_model import FaceModel
from benchmark.models.registry import create_head
from benchmark.models.heads import Head
from benchmark.train import distributed
from benchmark.train.adversarial import train_hardened, train_natural_then_at, train_pgd_at, train_trades
from benchmark.train.common import TrainConfig, ValPairs
from benchmark.train.gate import PerformanceGate
from benchmark.train.hardening import HardeningTerm
from benchmark.train.loop import train_semisupervised, train_supervised
from benchmark.train.recipe import (build_model, pair_scores, pretrained_cache, train_config, training_images, val_pairs,
                                    validation_meta)

STAGES = ("supervised", "semisupervised", "timm_reference", "adversarial", "pgd_at", "trades", "natural_then_at")


@dataclass
class TrainResult:
    """The trained model, its training history, test-pair scores, metrics, and the protocol used."""

    model: FaceModel
    history: dict
    scores: np.ndarray
    metrics: dict
    protocol: Protocol


def run(stage: str, params: Params, data: Dataset | None = None, worst_case: bool = False) -> TrainResult:
    """Train and evaluate one stage (a name in :data:`STAGES`) with validated ``params``; an adversarial stage with
    ``worst_case`` also scores the evaluation's worst case on its validation pairs (the cost front's measure)."""
    if stage not in STAGES:
        raise ValueError(f"unknown training stage '{stage}'; choose one of: {', '.join(STAGES)}")
    cfg: SupervisedConfig = getattr(params, stage)
    data = data or load_dataset(params)
    p, seed = data.protocol, params.seed
    torch.manual_seed(seed)
    device = resolve(params.device)
    check_precision(cfg.precision, device)
    model = place(build_model(cfg, data.geometry, seed, pretrained_cache(params)), device, cfg.channels_last)
    freeze_layers(model, cfg.frozen_layers, stage)
    semi = isinstance(cfg, SemiSupervisedConfig)
    train_idx = p.labelled if semi else training_images(cfg, p)
    head = create_head(cfg.head, embedding_dim=cfg.embedding_dim, num_classes=len(np.unique(data.labels[train_idx])), seed=seed)
    loop_cfg = train_config(cfg, seed)
    pairs = val_pairs(data)
    if semi:
        history = train_semisupervised(
            place(SemiSupervisedAE(model), device, cfg.channels_last), head, data.images, data.labels, p.labelled, p.unlabelled, p.val, loop_cfg,
            val_pairs=pairs,
        )
    elif isinstance(cfg, AdversarialTrainingConfig):
        history = train_adversarial(cfg, model, head, data, train_idx, pairs, loop_cfg)
    else:
        # Epochs at least as long as the semi-supervised stage's (one pass over the larger of the labelled and
        # unlabelled sets), so both see the same number of steps whatever label_fraction is.
        epoch_images = max(len(train_idx), len(p.unlabelled))
        history = train_supervised(model, head, data.images, data.labels, train_idx, p.val, loop_cfg,
                                   epoch_images=epoch_images, val_pairs=pairs)

    validation = validation_meta(model, pairs)
    scores = pair_scores(model, data.images, p.pairs)
    report = verification_report(scores, p.is_same, p.folds)
    keys = ("accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3")
    metrics = {
        "verification": {k: report[k] for k in keys},
        "validation": {k: validation["plain"][k] for k in ("threshold", "accuracy", "threshold_at_far", "pairs")},
        "train_seconds": round(history["train_seconds"], 2),
        "epochs": history["epochs"],
        "params": sum(t.numel() for t in model.parameters()),
        "converged_at": history["converged_at"],
        "best_epoch": history.get("best_epoch"),
        "kept_epoch": history["kept_epoch"],
        "start_val_accuracy": history["start_val_accuracy"],
        "images_per_second": round(history["images_per_second"], 1),
        "labelled_images": int(len(train_idx)),
        "unlabelled_images": int(len(p.unlabelled)) if semi else 0,
    }
    artifacts, reports = Path(params.paths.artifacts), Path(params.paths.reports)
    gate = history.get("gate")
    if isinstance(cfg, AdversarialTrainingConfig):
        attacked = (model, pairs.images, pairs.pairs, pairs.is_same, validation["plain"]["threshold"])
        metrics["validation"]["robust_accuracy"] = pgd_robust_accuracy(*attacked, cfg.eps, cfg.validation_attack_pairs, seed)
        if worst_case:
            metrics["validation"]["worst_case_robust_accuracy"] = worst_case_robust_accuracy(
                *attacked, cfg.validation_attack_pairs, seed)
        metrics["passes"] = history["passes"]
        metrics.update({knob: getattr(cfg, knob) for knob in ("threshold", "switch") if hasattr(cfg, knob)})
        metrics["adversarial_fraction"] = round(history["adversarial_fraction"], 4)
        metrics["switches"] = len(gate["switches"]) if gate else 0
    if distributed.is_main():  # under torchrun every process holds the same model; process 0 writes
        if gate:
            io.write_json(reports / "plots" / f"{stage}_gate.json", gate_rows(gate))
            io.write_json(reports / "plots" / f"{stage}_switches.json", gate["switches"])
        save_model(model, artifacts / "models" / f"{stage}.pt",
                   {"stage": stage, "config": as_dict(cfg), "seed": seed, **metrics, "validation": validation})
        io.write_json(reports / "plots" / f"{stage}_curves.json", curve_rows(history))
        io.write_json(reports / "metrics" / f"{stage}.json", metrics)
    return TrainResult(model, history, scores, metrics, p)


def gate_sweep(params: Params, thresholds: list[float], switches: list[float], work: Path) -> list[tuple[str, dict]]:
    """``make gate-sweep``'s runs: the gated stage at each of ``thresholds``, ``natural_then_at`` at each of
    ``switches``, then ``pgd_at`` and ``trades``, every other setting as in ``params``, on the data stage's data, each
    writing its files under ``work`` (the workspace's models and metrics stay as they are). Returns ``[(stage,
    metrics)]`` in that order; each run prints its progress."""
    data = load_dataset(params)
    runs = [*(("adversarial", {"threshold": t}) for t in thresholds),
            *(("natural_then_at", {"switch": s}) for s in switches), ("pgd_at", {}), ("trades", {})]
    out = []
    for i, (stage, change) in enumerate(runs, 1):
        print(f"gate sweep {i}/{len(runs)}: {stage} {change or '(params.yaml)'}", flush=True)
        section = dataclasses.replace(getattr(params, stage), **change)
        out.append((stage, run(stage, elsewhere(params, work / f"{i:02d}_{stage}", **{stage: section}), data,
                               worst_case=True).metrics))
    return out


def elsewhere(params: Params, where: Path, **changes: object) -> Params:
    """``params`` with ``changes`` whose stages write their models and reports under ``where`` instead of the
    workspace's folders, reading the workspace's converted pretrained weights (linked, not converted again)."""
    cache = pretrained_cache(params)
    paths = dataclasses.replace(params.paths, artifacts=str(where / "artifacts"), reports=str(where / "reports"))
    moved = dataclasses.replace(params, paths=paths, **changes)
    if cache.is_dir():
        pretrained_cache(moved).parent.mkdir(parents=True, exist_ok=True)
        pretrained_cache(moved).symlink_to(cache.resolve(), target_is_directory=True)
    return moved


STUDY_STAGES = ("supervised", "semisupervised")


def label_study(params: Params, fractions: list[float], seeds: list[int], work: Path,
                kept: frozenset = frozenset()) -> Iterator[dict]:
    """``make label-study``'s runs on the data stage's training source: per seed and label fraction
    (:func:`~benchmark.data.protocol.relabelled`: nested labelled sets per seed), the supervised stage on the
    labelled images alone and the semi-supervised stage on the labelled and unlabelled ones, both as ``params`` sets
    them otherwise (the same epochs: an epoch is one pass over the larger set for both), each writing under ``work``;
    the ``(seed, fraction, stage)`` in ``kept`` are skipped (a study file holds them already).
    Yields one ``{"seed", "fraction", "stage", "init", "labelled", "unlabelled", "epochs", "accuracy", "correct"}``
    as each run ends (so a caller can keep what finished before an interruption): the test pairs' 10-fold accuracy
    and each pair's outcome (bool list, the pairs of the protocol)."""
    data = load_dataset(params)
    todo = [(seed, fraction, stage) for seed in seeds for fraction in fractions for stage in STUDY_STAGES
            if (seed, fraction, stage) not in kept]
    for done, (seed, fraction, stage) in enumerate(todo, 1):
        protocol = relabelled(data.protocol, fraction, seed)
        split = dataclasses.replace(data, protocol=protocol)
        print(f"label study {done}/{len(todo)}: {stage}, label fraction {fraction}, seed {seed}", flush=True)
        section = getattr(params, stage)
        changed = {stage: dataclasses.replace(section, images="labelled")} if stage == "supervised" else {}
        result = run(stage, elsewhere(params, work / f"{seed}_{fraction}_{stage}", seed=seed, **changed), split)
        yield {"seed": seed, "fraction": fraction, "stage": stage, "init": section.init,
               "labelled": int(len(protocol.labelled)), "unlabelled": int(len(protocol.unlabelled)),
               "epochs": result.metrics["epochs"],
               "accuracy": result.metrics["verification"]["accuracy_mean"],
               "correct": kfold_correct(result.scores, protocol.is_same, protocol.folds).tolist()}


def freeze_layers(model: FaceModel, count: int, stage: str) -> None:
    """Take the backbone's first ``count`` layers (its ``layers()``) out of training: no gradient (the loop keeps them
    in eval mode). ConfigError naming the stage when the backbone has no layer list or fewer layers."""
    if not count:
        return
    layers = model.backbone.layers() if hasattr(model.backbone, "layers") else []
    if count > len(layers):
        raise ConfigError(f"'{stage}.frozen_layers' = {count}: backbone '{model.backbone_name}' has "
                          f"{len(layers) or 'no'} layers to freeze (ae_encoder 3, facenet_casia 17); use fewer or 0")
    for layer in layers[:count]:
        layer.requires_grad_(False)


def place(module: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """``module`` on ``device``, its 4-d weights in channels-last memory order when asked."""
    module.to(device)
    return module.to(memory_format=torch.channels_last) if channels_last else module


def train_adversarial(cfg: AdversarialTrainingConfig, model: FaceModel, head: Head, data: Dataset,
                      train_idx: np.ndarray, pairs: ValPairs, loop_cfg: TrainConfig) -> dict:
    """Train an adversarial stage on ``train_idx``, with the supervised stage's epoch length:
    the gated hardening for a :class:`HardenedConfig`, TRADES for a :class:`TradesConfig`, natural training then
    PGD-AT for a :class:`NaturalThenATConfig`, else PGD-AT."""
    p = data.protocol
    args = (model, head, data.images, data.labels, train_idx, p.val, loop_cfg, cfg.eps, cfg.attack_steps)
    kw = {"epoch_images": max(len(train_idx), len(p.unlabelled)), "val_pairs": pairs}
    if isinstance(cfg, HardenedConfig):
        term = HardeningTerm(cfg.beta, cfg.gamma, cfg.margin)
        gate = PerformanceGate(cfg.threshold, cfg.hysteresis)
        return train_hardened(*args, term, gate, **kw)
    if isinstance(cfg, TradesConfig):
        return train_trades(*args, cfg.beta, **kw)
    if isinstance(cfg, NaturalThenATConfig):
        return train_natural_then_at(*args, cfg.switch, **kw)
    return train_pgd_at(*args, **kw)


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
