"""What every training loop shares: its configuration, batches, identity classes, optimizer and schedule,
and the early-stopping signal on validation pairs.

Batches are drawn from uint8 (N, H, W, 3) arrays by index, moved to the model's device as uint8 and
converted there to float32 NCHW in [0, 1] (one ``permute`` + ``/ 255`` per batch, no per-image Python loop),
then augmented there (:mod:`benchmark.train.augment`). Sampling and augmentation draw from one
``numpy`` generator seeded by ``TrainConfig.seed``, so a run is deterministic on the CPU.

:func:`val_pair_accuracy` is the verification accuracy of a model on :class:`ValPairs` (pairs of
validation identities, disjoint from the training ones) at its best threshold: the signal the loops stop
on and pick their best epoch by.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from benchmark.device import PRECISIONS
from benchmark.evaluation.verification import best_threshold, cosine_scores
from benchmark.models.autoencoder import check_g
from benchmark.models.checkpoint import embed_images
from benchmark.models.face_model import FaceModel, uint8_to_float_nchw
from benchmark.train.augment import AUGMENTATIONS, augment_batch

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step")


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of a training run. The defaults train the patent's model on the default data (64x64,
    label_fraction 0.25) in about 90 s (semi-supervised) and 25 s (supervised-only) on 2 CPU cores.

    max_epochs:   cap on epochs; training stops earlier once every tracked curve has converged.
    batch_size:   images per step (per stream: a semi-supervised step takes this many labelled and
                  this many unlabelled images).
    optimizer:    "adamw" (decoupled weight decay, Loshchilov & Hutter 2019) or "sgd" (momentum 0.9, Nesterov).
    lr:           peak learning rate; weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
    schedule:     "cosine" (per step, from lr to 0 over max_epochs) or "step" (x0.1 at 50% and 75% of max_epochs).
    patience, min_delta: the plateau rule of :mod:`benchmark.train.convergence`, on the validation curves:
                  min_delta is relative for a loss (0.01 = 1% of its best) and absolute for the validation
                  pairs' accuracy (0.01 = one point).
    g:            weight of LossA in Loss = g * LossA + (1 - g) * LossB, in (0.5, 1) (semi-supervised only).
    noise:        semi-supervised only: std of the Gaussian noise on the unlabelled images of the pass the decoder
                  denoises (0: the decoder works from the clean pass its targets come from).
    augment:      training augmentation (:mod:`benchmark.train.augment`): "standard" (flip, shift/scale,
                  colour jitter), "flip" (horizontal flip only) or "none".
    keep_best:    with validation pairs, end with the weights of the epoch of best ``val_accuracy`` instead of
                  the last epoch's (the adversarial loops always keep the last epoch).
    fine_tune:    the model starts from a pretrained recognizer (``init`` other than ``scratch``). With
                  ``keep_best`` its starting weights are validated as epoch 0 and returned unchanged when no
                  epoch beats them, so fine-tuning never ends worse on validation pairs than where it started.
    head_epochs:  when fine-tuning, the first epochs train the head only, the pretrained body frozen in eval
                  mode, then the whole network trains: linear probing, then fine-tuning (Kumar et al., ICLR
                  2022), so a fresh head's random gradients do not distort the pretrained features.
    head_lr:      when fine-tuning, the head's learning rate (the body's is ``lr``); 0 = ``lr``.
    precision:    "fp32", or mixed precision: the training steps run under autocast in "bf16" or "fp16" (with a
                  gradient scaler; CUDA only); validation stays in fp32.
    loader_workers: worker processes gathering training batches ahead of the step (:mod:`benchmark.train.loader`;
                  0: in the training process, on the one generator that augmentation also draws from).
    seed:         seeds sampling, augmentation and torch's RNG.
    threads:      torch.set_num_threads for the run; 0 leaves the current setting.
    progress:     show a tqdm bar (one tick per epoch, losses in its postfix).
    """

    max_epochs: int = 15
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    patience: int = 4
    min_delta: float = 0.01
    g: float = 0.75
    noise: float = 0.0
    augment: str = "standard"
    keep_best: bool = True
    fine_tune: bool = False
    head_epochs: int = 0
    head_lr: float = 0.0
    precision: str = "fp32"
    loader_workers: int = 0
    seed: int = 0
    threads: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_epochs < 1 or self.batch_size < 2:
            raise ValueError(f"max_epochs must be >= 1 and batch_size >= 2, got {self.max_epochs}, {self.batch_size}")
        if self.optimizer not in OPTIMIZERS or self.schedule not in SCHEDULES:
            raise ValueError(
                f"optimizer {self.optimizer!r} / schedule {self.schedule!r} not allowed; "
                f"choose optimizer from {OPTIMIZERS} and schedule from {SCHEDULES}"
            )
        if not (self.lr > 0 and self.weight_decay >= 0 and self.threads >= 0 and self.head_lr >= 0
                and self.loader_workers >= 0):
            raise ValueError(
                f"need lr > 0, weight_decay >= 0, threads >= 0, head_lr >= 0, loader_workers >= 0; got {self.lr}, "
                f"{self.weight_decay}, {self.threads}, {self.head_lr}, {self.loader_workers}"
            )
        if (self.head_epochs or self.head_lr) and not self.fine_tune:
            raise ValueError("head_epochs and head_lr apply when fine-tuning a pretrained model (fine_tune)")
        if not 0 <= self.head_epochs < self.max_epochs:
            raise ValueError(f"head_epochs must be in [0, max_epochs = {self.max_epochs}), got {self.head_epochs}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment {self.augment!r} not allowed; choose from {AUGMENTATIONS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} not allowed; choose from {tuple(PRECISIONS)}")
        check_g(self.g)
        if not 0 <= self.noise <= 1:
            raise ValueError(f"noise must be in [0, 1] (pixel units), got {self.noise}")


class BatchStream:
    """Endless batches of ``batch_size`` indices from ``indices``, reshuffled after every pass.

    Every batch is full (a pass that does not divide evenly continues into the next permutation), so
    BatchNorm never sees a batch of one.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, rng: np.random.Generator) -> None:
        if len(indices) == 0:
            raise ValueError("cannot draw batches from an empty index array")
        self.indices = np.asarray(indices, np.int64)
        self.batch_size = batch_size
        self.rng = rng
        self._order = np.empty(0, np.int64)

    def next(self) -> np.ndarray:
        while len(self._order) < self.batch_size:
            self._order = np.concatenate([self._order, self.rng.permutation(self.indices)])
        batch, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return batch


def load_batch(
    images: np.ndarray,
    idx: np.ndarray,
    device: torch.device,
    augment: str = "none",
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """uint8 images[idx] -> float32 (B, 3, H, W) in [0, 1] on ``device``, augmented there by ``augment``
    (one of ``AUGMENTATIONS``) with random numbers from ``rng`` (needed unless ``augment`` is "none")."""
    return prepare_batch(torch.from_numpy(images[idx]).to(device, non_blocking=True), augment, rng)


def prepare_batch(batch: torch.Tensor, augment: str = "none", rng: np.random.Generator | None = None) -> torch.Tensor:
    """A uint8 (B, H, W, 3) batch -> float32 (B, 3, H, W) in [0, 1] on its device, augmented as :func:`load_batch`."""
    if batch.dtype != torch.uint8 or batch.dim() != 4 or batch.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {batch.dtype} {tuple(batch.shape)}")
    x = uint8_to_float_nchw(batch)
    if augment == "none":
        return x
    if rng is None:
        raise ValueError(f"augment {augment!r} needs a random generator")
    return augment_batch(x, augment, rng)


@dataclass(frozen=True)
class ValPairs:
    """Verification pairs on validation identities (identity-disjoint from training)."""

    images: np.ndarray  # uint8 (M, H, W, 3), the images the pairs index
    pairs: np.ndarray  # int64 (P, 2), indices into images
    is_same: np.ndarray  # (P,) 1 genuine / 0 impostor


def val_pair_accuracy(model: FaceModel, val_pairs: ValPairs) -> tuple[float, float]:
    """(accuracy, threshold): verification accuracy of ``model`` on ``val_pairs`` at the accuracy-maximizing
    cosine threshold (:func:`~benchmark.evaluation.verification.best_threshold`). Embeds in eval mode
    without gradients and restores the model's train/eval mode."""
    scores = cosine_scores(embed_images(model, val_pairs.images), val_pairs.pairs)
    threshold, accuracy = best_threshold(scores, val_pairs.is_same)
    return accuracy, threshold


class IdentityClasses:
    """Maps identity labels (any ints) of the labelled images to head classes 0..C-1."""

    def __init__(self, labels: np.ndarray) -> None:
        self.classes = np.unique(labels)

    def __len__(self) -> int:
        return len(self.classes)

    def known(self, labels: np.ndarray) -> np.ndarray:
        """Boolean mask of the labels that have a class."""
        return np.isin(labels, self.classes)

    def targets(self, labels: np.ndarray, device: torch.device) -> torch.Tensor:
        """int64 (B,) class indices of known ``labels``."""
        return torch.from_numpy(np.searchsorted(self.classes, labels)).to(device)

    def check(self, num_classes: int) -> None:
        if num_classes != len(self.classes):
            raise ValueError(
                f"the head has {num_classes} classes but the labelled images hold {len(self.classes)} identities; "
                f"build it with num_classes={len(self.classes)}"
            )


SGD_MOMENTUM = 0.9  # Nesterov momentum of make_optimizer's SGD


def make_optimizer(params: list[torch.nn.Parameter] | list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over ``params``: parameters, or parameter groups (dicts) whose own ``lr`` overrides ``cfg.lr``."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=SGD_MOMENTUM, nesterov=True, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate's factor at each optimizer step (0-based): cosine from 1 to 0 over max_epochs, or x0.1 at
    50% and 75% of them."""
    total = cfg.max_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        return 0.1 ** ((step >= total // 2) + (step >= 3 * total // 4))

    return factor


def make_schedule(
    opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate schedule of :func:`lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg, steps_per_epoch))
