"""How much the training loop costs over bare PyTorch: images/s of :mod:`benchmark.train.loop` divided by
images/s of the simplest loop over the same model, data and batch size, measured in the same process.

The bare loop converts the training images to one float tensor up front and then only indexes it,
applies the loop's augmentation (``TrainConfig.augment``, :func:`~benchmark.train.augment.augment_batch`:
work both sides do, so the ratio measures the loop's own cost), runs forward, cross-entropy (plus LossB for
the semi-supervised model), backward and an AdamW step: no schedule, no logging, no progress bar. The training loop's figure is its
``images_per_second`` (training steps only; its per-epoch validation is work the bare loop does not do,
and is reported apart as ``seconds``). The target is a ratio of at least 0.8.

Runs alternate (bare, loop, bare, loop, ...) from copies of one initial model, after one untimed
warm-up, and the medians are compared, so a burst of load from another process hits both sides.

``facebench perf`` (:mod:`benchmark.perf`) runs it on the data stage's output and writes the figure.
"""

from __future__ import annotations

import copy
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.models.autoencoder import SemiSupervisedAE, combine
from benchmark.models.face_model import FaceModel, to_float_nchw
from benchmark.models.heads import Head
from benchmark.train.augment import augment_batch
from benchmark.train.common import IdentityClasses, TrainConfig
from benchmark.train.loop import train_semisupervised, train_supervised


def bare_images_per_second(
    model: FaceModel | SemiSupervisedAE,
    head: Head,
    images: np.ndarray,
    labels: np.ndarray,
    labelled: np.ndarray,
    unlabelled: np.ndarray | None,
    steps: int,
    cfg: TrainConfig,
) -> float:
    """Images/s of ``steps`` bare training steps (batch ``cfg.batch_size``, lr ``cfg.lr``, ``cfg.augment``).

    With a :class:`SemiSupervisedAE` and ``unlabelled`` indices each step also takes ``batch_size``
    unlabelled images through LossB, as the semi-supervised loop does; images/s counts both.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    semi = isinstance(model, SemiSupervisedAE)
    x_lab = to_float_nchw(images[labelled])
    y_lab = torch.from_numpy(np.searchsorted(IdentityClasses(labels[labelled]).classes, labels[labelled]))
    x_unl = to_float_nchw(images[unlabelled if len(unlabelled) else labelled]) if semi else None
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    head.train()
    n = cfg.batch_size
    start = time.perf_counter()
    for _ in range(steps):
        i = torch.randint(len(x_lab), (n,))
        if semi:
            x = torch.cat([x_lab[i], x_unl[torch.randint(len(x_unl), (n,))]])
            downs = model.encode(augment_batch(x, cfg.augment, rng))
            loss_a = F.cross_entropy(head(model.embedding(downs[2][:n]), y_lab[i]), y_lab[i])
            loss = combine(loss_a, sum(model.skip_losses(tuple(d[n:] for d in downs))), cfg.g)
        else:
            loss = F.cross_entropy(head(model(augment_batch(x_lab[i], cfg.augment, rng)), y_lab[i]), y_lab[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * n * (2 if semi else 1) / (time.perf_counter() - start)


def loop_images_per_second(
    model: FaceModel | SemiSupervisedAE,
    head: Head,
    images: np.ndarray,
    labels: np.ndarray,
    labelled: np.ndarray,
    unlabelled: np.ndarray | None,
    val: np.ndarray,
    epochs: int,
    cfg: TrainConfig,
) -> float:
    """``images_per_second`` of the training loop run for exactly ``epochs`` epochs (no early stop)."""
    run = TrainConfig(**{**vars(cfg), "max_epochs": epochs, "patience": epochs + 1})
    if isinstance(model, SemiSupervisedAE):
        history = train_semisupervised(model, head, images, labels, labelled, unlabelled, val, run)
    else:
        history = train_supervised(model, head, images, labels, labelled, val, run)
    return history["images_per_second"]


def throughput_ratio(
    model: FaceModel | SemiSupervisedAE,
    head: Head,
    images: np.ndarray,
    labels: np.ndarray,
    labelled: np.ndarray,
    unlabelled: np.ndarray | None,
    val: np.ndarray,
    epochs: int = 2,
    repeats: int = 3,
    cfg: TrainConfig | None = None,
) -> dict:
    """Training loop vs bare loop on copies of ``model``/``head``; both run the same number of steps.

    Returns loop_images_per_second and bare_images_per_second (medians over ``repeats``), their
    ``ratio`` (target >= 0.8) and the per-repeat figures (``loop_runs``, ``bare_runs``).
    ``cfg`` defaults to ``TrainConfig(progress=False)``.
    """
    cfg = cfg or TrainConfig(progress=False)
    semi = isinstance(model, SemiSupervisedAE)
    larger = max(len(labelled), len(unlabelled)) if semi else len(labelled)
    steps = epochs * -(-larger // cfg.batch_size)
    bare_images_per_second(copy.deepcopy(model), copy.deepcopy(head), images, labels, labelled, unlabelled, 3, cfg)
    loop_runs, bare_runs = [], []
    for _ in range(repeats):
        bare_runs.append(
            bare_images_per_second(
                copy.deepcopy(model), copy.deepcopy(head), images, labels, labelled, unlabelled, steps, cfg
            )
        )
        loop_runs.append(
            loop_images_per_second(
                copy.deepcopy(model), copy.deepcopy(head), images, labels, labelled, unlabelled, val, epochs, cfg
            )
        )
    loop, bare = statistics.median(loop_runs), statistics.median(bare_runs)
    return {
        "loop_images_per_second": loop,
        "bare_images_per_second": bare,
        "ratio": loop / bare,
        "loop_runs": loop_runs,
        "bare_runs": bare_runs,
        "steps": steps,
        "batch_size": cfg.batch_size,
        "threads": torch.get_num_threads(),
    }
