"""The training loop shared by every variant: supervised (any backbone + head) and semi-supervised
(patent CN112364828B: Loss = g * LossA + (1 - g) * LossB).

Both take uint8 (N, H, W, 3) images, integer identity labels (N,) and index arrays from the protocol
(:mod:`benchmark.data.protocol`); batches are converted and augmented on the fly
(:mod:`benchmark.train.common`, ``TrainConfig.augment``). After every epoch the losses are measured on the
validation slice (eval mode, no augmentation) and, given :class:`~benchmark.train.common.ValPairs`, the
verification accuracy on those pairs (``val_accuracy``); the plateau rule (:mod:`benchmark.train.convergence`)
is applied to the tracked curves, and training ends when every one has converged, or at ``max_epochs``:

* supervised: ``val_accuracy`` (LossA without validation pairs);
* semi-supervised (claim 2, "both losses converge"): LossB and the supervised side's ``val_accuracy``
  (LossA and LossB without validation pairs). LossA is logged either way.

A cross-entropy on the training identities keeps falling while the embedding memorizes them (on real faces
the training loss goes to 0 while the validation one stays flat); the accuracy on pairs of unseen
identities is what recognition needs, so it is what stops training and, with ``TrainConfig.keep_best``,
picks the epoch whose weights are kept (the last one otherwise, and always without validation pairs).

The returned history holds, for every loss, the per-epoch mean over training steps and the validation
value (``curves[name]["train" | "val"]``, epoch 1 first), ``converged_at`` (1-based epoch or None),
``epochs``, ``seconds`` (wall clock, validation included), ``train_seconds`` and ``images_per_second``
(images through the network per second of training steps, the figure :mod:`benchmark.train.bare`
compares with a bare PyTorch loop), ``best_epoch`` and ``best_val_accuracy`` (1-based epoch of the highest
``val_accuracy`` and its value; None without validation pairs; epoch 0 is the pretrained start when
fine-tuning), ``kept_epoch`` (the epoch whose weights the modules hold on return), ``start_val_accuracy``
(the starting weights' ``val_accuracy`` when fine-tuning with keep-best, None otherwise), and for the
semi-supervised model the per-epoch :func:`~benchmark.models.autoencoder.collapse_stats` of the validation
images (``collapse``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from benchmark.device import PRECISIONS
from benchmark.models.autoencoder import SemiSupervisedAE, collapse_stats, combine, mean_map_losses
from benchmark.models.face_model import FaceModel
from benchmark.models.heads import Head
from benchmark.train.common import (
    IdentityClasses,
    TrainConfig,
    ValPairs,
    load_batch,
    make_optimizer,
    make_schedule,
    val_pair_accuracy,
)
from benchmark.train import distributed
from benchmark.train.convergence import all_converged
from benchmark.train.loader import TrainBatches

StepFn = Callable[[], tuple[torch.Tensor, dict[str, float]]]
ValFn = Callable[[], dict[str, float]]
ACCURACY = "val_accuracy"


def fit(
    modules: list[nn.Module],
    step: StepFn,
    validate: ValFn,
    steps_per_epoch: int,
    images_per_step: int,
    cfg: TrainConfig,
    tracked: tuple[str, ...],
    desc: str,
    keep_best: bool = False,
    body: nn.Module | None = None,
) -> dict:
    """Run epochs of ``step`` (returns the loss to minimise and the losses to log) until every curve in
    ``tracked`` has converged on ``validate``'s values, or ``max_epochs``; returns the history and
    leaves ``modules`` in eval mode. A name that only ``step`` logs (or only ``validate`` returns) gets a
    train-only (val-only) curve; ``tracked`` names need a validation value. ``val_accuracy`` (``ACCURACY``)
    is judged higher-is-better, every other curve lower-is-better.

    keep_best: when ``validate`` returns ``val_accuracy``, deep-copy the state_dicts of ``modules`` at each
    epoch that raises its best value and load the best epoch's back at the end (first epoch on a tie); with
    ``cfg.fine_tune`` the starting weights compete as epoch 0.
    body: the part of ``modules`` that ``cfg.fine_tune`` starts from pretrained weights (the others are heads):
    frozen in eval mode for ``cfg.head_epochs`` epochs; it trains at ``cfg.lr``, the heads at ``cfg.head_lr``.
    Parameters that come in without ``requires_grad`` (a stage's ``frozen_layers``) stay frozen, and the layers that
    hold them stay in eval mode throughout.
    The progress bar's postfix shows each tracked curve as train/val, and ``val_accuracy`` when present.
    Each step runs under autocast in ``cfg.precision`` (with a gradient scaler for fp16) and, under torchrun,
    through DistributedDataParallel (:func:`~benchmark.train.distributed.data_parallel`); the epoch's logged
    training losses are then averaged over the processes."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.fine_tune and body is None:
        raise ValueError(f"{desc}: fine-tuning needs the pretrained body among the modules (fit's body)")
    body = body if cfg.fine_tune else None
    trainable = [p for p in body.parameters() if p.requires_grad] if body is not None else []
    frozen = _frozen_layers(modules)
    opt = make_optimizer(_param_groups(modules, body, cfg), cfg)
    device_type = model_device(modules[0]).type
    scaler = torch.amp.GradScaler(device_type, enabled=cfg.precision == "fp16")
    schedule = make_schedule(opt, cfg, steps_per_epoch)
    curves: dict[str, dict[str, list[float]]] = {}
    converged: dict[str, int | None] = {name: None for name in tracked}
    start, train_seconds, epoch = time.perf_counter(), 0.0, 0
    best_epoch, best_accuracy, snapshot, start_accuracy = None, float("-inf"), None, None
    if keep_best and cfg.fine_tune:
        for m in modules:
            m.eval()
        with torch.no_grad():
            start_accuracy = validate().get(ACCURACY)
        if start_accuracy is not None:
            best_epoch, best_accuracy = 0, start_accuracy
            snapshot = [copy.deepcopy(m.state_dict()) for m in modules]
    bar = tqdm(total=cfg.max_epochs, desc=desc, unit="epoch", disable=not cfg.progress or not distributed.is_main())
    with distributed.data_parallel(modules, find_unused=body is not None) as run_step:
        while epoch < cfg.max_epochs and not all(converged.values()):
            epoch += 1
            for m in modules:
                m.train()
            if body is not None:
                warming = epoch <= cfg.head_epochs
                for p in trainable:
                    p.requires_grad_(not warming)
                body.train(not warming)
            for m in frozen:
                m.eval()
            sums: dict[str, float] = {}
            tick = time.perf_counter()
            for _ in range(steps_per_epoch):
                with torch.autocast(device_type, PRECISIONS[cfg.precision], enabled=cfg.precision != "fp32"):
                    loss, logged = run_step(step)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                schedule.step()
                for k, v in logged.items():
                    sums[k] = sums.get(k, 0.0) + v
            train_seconds += time.perf_counter() - tick
            sums = distributed.means(sums)
            for m in modules:
                m.eval()
            with torch.no_grad():
                val = validate()
            for k in {**sums, **val}:
                curve = curves.setdefault(k, {"train": [], "val": []})
                if k in sums:
                    curve["train"].append(sums[k] / steps_per_epoch)
                if k in val:
                    curve["val"].append(val[k])
            if val.get(ACCURACY, float("nan")) > best_accuracy:
                best_epoch, best_accuracy = epoch, val[ACCURACY]
                if keep_best:
                    snapshot = [copy.deepcopy(m.state_dict()) for m in modules]
            converged = all_converged(
                {k: curves[k]["val"] for k in tracked}, cfg.patience, cfg.min_delta, maximize=(ACCURACY,)
            )
            shown = tracked + ((ACCURACY,) if ACCURACY in val and ACCURACY not in tracked else ())
            bar.update(1)
            bar.set_postfix({k: "/".join(f"{c[-1]:.3f}" for c in curves[k].values() if c) for k in shown})
    bar.close()
    if snapshot is not None:
        for m, state in zip(modules, snapshot):
            m.load_state_dict(state)
    for m in modules:
        m.eval()
    return {
        "epochs": epoch,
        "curves": curves,
        "converged_at": converged,
        "stopped": "converged" if all(converged.values()) else "max_epochs",
        "seconds": time.perf_counter() - start,
        "train_seconds": train_seconds,
        "images_per_second": epoch * steps_per_epoch * images_per_step / max(train_seconds, 1e-9),
        "best_epoch": best_epoch,
        "best_val_accuracy": best_accuracy if best_epoch is not None else None,
        "kept_epoch": best_epoch if snapshot is not None else epoch,
        "start_val_accuracy": start_accuracy,
    }


def _frozen_layers(modules: list[nn.Module]) -> list[nn.Module]:
    """The layers of ``modules`` that hold parameters, none of which requires a gradient."""
    frozen = []
    for layer in (m for root in modules for m in root.modules()):
        own = list(layer.parameters(recurse=False))
        if own and not any(p.requires_grad for p in own):
            frozen.append(layer)
    return frozen


def _param_groups(modules: list[nn.Module], body: nn.Module | None, cfg: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: the body's at ``cfg.lr``, the rest at ``cfg.head_lr`` (``lr`` when 0)."""
    in_body = {id(p) for p in body.parameters()} if body is not None else set()
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) in in_body]},
              {"params": [p for p in params if id(p) not in in_body], "lr": cfg.head_lr or cfg.lr}]
    return [g for g in groups if g["params"]]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's (first) parameters."""
    return next(model.parameters()).device


def val_slices(n: int, size: int = 256) -> list[slice]:
    """Consecutive slices of at most ``size`` covering ``n`` validation images."""
    return [slice(i, i + size) for i in range(0, n, size)]


def labelled_mask(classes: IdentityClasses, labels: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Mask of the validation images whose identity has a class; the plateau rule needs at least one."""
    known = classes.known(labels[val])
    if not known.any():
        raise ValueError(
            f"the validation slice ({len(val)} images) holds no image of a labelled identity: "
            "the convergence rule needs a held-out LossA (raise data.protocol.val_fraction)"
        )
    return known


def weighted_mean(pairs: list[tuple[float, int]]) -> float:
    """Mean of (value, count) pairs weighted by count; NaN for no count."""
    total = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / total if total else float("nan")


def train_supervised(
    model: FaceModel,
    head: Head,
    images: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    cfg: TrainConfig,
    epoch_images: int | None = None,
    val_pairs: ValPairs | None = None,
) -> dict:
    """Train ``model`` and ``head`` with cross-entropy on the head's margin logits (LossA) on ``train``.

    images: uint8 (N, H, W, 3); labels: int (N,); train, val: int index arrays into them. The head's
    ``num_classes`` must equal the number of identities in ``train``; validation images of other
    identities are left out of the validation LossA.
    epoch_images: images per epoch (default ``len(train)``, one pass). The supervised-only baseline of
    the patent's model passes the semi-supervised epoch, ``max(len(labelled), len(unlabelled))``, so both
    take the same labelled batches per epoch and differ only by LossB; it also keeps a tiny labelled set
    (label_fraction 0.05: 2 steps an epoch) from being declared converged after a handful of steps.
    val_pairs: verification pairs of validation identities; when given, training stops on their accuracy
    (``val_accuracy``) and, with ``cfg.keep_best``, keeps the best epoch's weights.
    Returns the history (module docstring).
    """
    classes = IdentityClasses(labels[train])
    classes.check(head.num_classes)
    val = val[labelled_mask(classes, labels, val)]
    device = model_device(model)
    head.to(device)  # the head trains where the model is
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    batches = TrainBatches(images, train, cfg.batch_size, device, cfg.augment, rng, cfg.loader_workers, cfg.seed)

    def step() -> tuple[torch.Tensor, dict[str, float]]:
        idx = batches.draw()
        y = distributed.shard(classes.targets(labels[idx], device))
        x = distributed.shard(batches.load(idx))
        loss = F.cross_entropy(head(model(x), y), y)
        return loss, {"loss_a": loss.item()}

    def validate() -> dict[str, float]:
        out = []
        for part in val_slices(len(val)):
            idx = val[part]
            y = classes.targets(labels[idx], device)
            out.append((F.cross_entropy(head(model(load_batch(images, idx, device)), y), y).item(), len(idx)))
        if val_pairs is None:
            return {"loss_a": weighted_mean(out)}
        return {"loss_a": weighted_mean(out), ACCURACY: val_pair_accuracy(model, val_pairs)[0]}

    steps = -(-(epoch_images or len(train)) // cfg.batch_size)
    tracked = ("loss_a",) if val_pairs is None else (ACCURACY,)
    return fit(
        [model, head], step, validate, steps, cfg.batch_size, cfg, tracked, f"supervised {model.backbone_name}",
        keep_best=cfg.keep_best, body=model,
    )


def train_semisupervised(
    model: SemiSupervisedAE,
    head: Head,
    images: np.ndarray,
    labels: np.ndarray,
    labelled: np.ndarray,
    unlabelled: np.ndarray,
    val: np.ndarray,
    cfg: TrainConfig,
    val_pairs: ValPairs | None = None,
) -> dict:
    """Train the patent's model: each step takes ``batch_size`` labelled images (LossA through the fully
    connected layer and ``head``) and ``batch_size`` unlabelled ones (LossB = Loss1 + Loss2 + Loss3) in one
    encoder pass, and minimises g * LossA + (1 - g) * LossB. An epoch is one pass over the larger of the
    two sets. With no unlabelled images (label_fraction 1.0) LossB uses the labelled images, labels unused.

    With ``cfg.noise`` the decoder works from a second, corrupted pass over the unlabelled images (Gaussian
    noise of that std) and matches the clean pass's maps, which are computed without gradient (denoising,
    :mod:`benchmark.models.autoencoder`).

    Validation: LossA on the ``val`` images of labelled identities, LossB on all ``val`` images (from a corrupted
    pass when denoising, the same noise every epoch), each skip loss's mean-map floor
    (``loss1_mean_map``...: a decoder predicting the mean map), and given
    ``val_pairs`` the accuracy of ``model.face`` on them (``val_accuracy``), which then replaces LossA in the
    stopping rule and, with ``cfg.keep_best``, picks the epoch whose weights are kept.
    Returns the history (module docstring), with curves for loss, loss_a, loss_b and loss1-3.
    """
    classes = IdentityClasses(labels[labelled])
    classes.check(head.num_classes)
    if len(unlabelled) == 0:
        unlabelled = labelled
    known_val = labelled_mask(classes, labels, val)
    device = model_device(model)
    head.to(device)  # the head trains where the model is
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    lab, unl = (TrainBatches(images, part, cfg.batch_size, device, cfg.augment, rng, cfg.loader_workers, cfg.seed, i)
                for i, part in enumerate((labelled, unlabelled)))
    n = cfg.batch_size
    collapse: dict[str, list[float]] = {}

    def step() -> tuple[torch.Tensor, dict[str, float]]:
        il, iu = lab.draw(), unl.draw()
        xl, xu = distributed.shard(lab.load(il)), distributed.shard(unl.load(iu))
        k = len(xl)  # this process's labelled images (n in one process)
        targets = None
        if cfg.noise:  # denoising: the decoder works from a corrupted pass, its targets from the clean one
            with torch.no_grad():
                targets = model.encode(xu)
            xu = xu + cfg.noise * torch.randn_like(xu)
        downs = model.encode(torch.cat([xl, xu]))
        y = distributed.shard(classes.targets(labels[il], device))
        loss_a = F.cross_entropy(head(model.embedding(downs[2][:k]), y), y)
        parts = model.skip_losses(tuple(d[k:] for d in downs), targets)
        loss_b = parts[0] + parts[1] + parts[2]
        loss = combine(loss_a, loss_b, cfg.g)
        logged = {
            "loss": loss,
            "loss_a": loss_a,
            "loss_b": loss_b,
            "loss1": parts[0],
            "loss2": parts[1],
            "loss3": parts[2],
        }
        return loss, {k: v.item() for k, v in logged.items()}

    def validate() -> dict[str, float]:
        sums: dict[str, list[tuple[float, int]]] = {}
        gen = torch.Generator(device=device).manual_seed(cfg.seed)  # the same validation noise every epoch
        for part in val_slices(len(val)):
            idx, known = val[part], known_val[part]
            x = load_batch(images, idx, device)
            downs = model.encode(x)
            noise = cfg.noise * torch.randn(x.shape, generator=gen, device=device) if cfg.noise else None
            noisy = downs if noise is None else model.encode(x + noise)
            parts = model.skip_losses(noisy, downs)
            for k, v, floor in zip(("loss1", "loss2", "loss3"), parts, mean_map_losses(downs)):
                sums.setdefault(k, []).append((v.item(), len(idx)))
                sums.setdefault(f"{k}_mean_map", []).append((floor.item(), len(idx)))
            sums.setdefault("loss_b", []).append((sum(p.item() for p in parts), len(idx)))
            if known.any():
                y = classes.targets(labels[idx[known]], device)
                loss_a = F.cross_entropy(head(model.embedding(downs[2][torch.from_numpy(known)]), y), y)
                sums.setdefault("loss_a", []).append((loss_a.item(), int(known.sum())))
        out = {k: weighted_mean(v) for k, v in sums.items()}
        out["loss"] = cfg.g * out["loss_a"] + (1 - cfg.g) * out["loss_b"]
        for k, v in collapse_stats(model, load_batch(images, val[:256], device)).items():
            collapse.setdefault(k, []).append(v)
        if val_pairs is not None:
            out[ACCURACY] = val_pair_accuracy(model.face, val_pairs)[0]
        return out

    steps = -(-max(len(labelled), len(unlabelled)) // n)
    tracked = ("loss_a", "loss_b") if val_pairs is None else (ACCURACY, "loss_b")
    history = fit([model, head], step, validate, steps, 2 * n, cfg, tracked, "semi-supervised", keep_best=cfg.keep_best,
                  body=model.face)
    history["collapse"] = collapse
    return history
