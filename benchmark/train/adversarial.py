"""Adversarial training of a FaceModel + margin head: the patent's gated hardening and its two baselines.

* :func:`train_hardened` (patent CN116665282A): clean (source) batches; after every batch the
  :class:`~benchmark.train.gate.PerformanceGate` reads the source batch's cross-entropy. While it is on,
  each batch is adversarial: half of it untargeted PGD (x_adv), half targeted PGD toward another identity
  (x_tgt, the patent's target samples), trained with CE on those plus the term of
  :mod:`benchmark.train.hardening`; while off, plain CE on the source batch.
* :func:`train_pgd_at`: static PGD adversarial training from the first step (Madry et al. 2018,
  "Towards Deep Learning Models Resistant to Adversarial Attacks"): CE on untargeted PGD images only.
* :func:`train_trades`: TRADES (Zhang et al. 2019, :mod:`benchmark.train.trades`).
* :func:`train_natural_then_at`: natural training for the first part of the step budget, then PGD-AT (Gupta et
  al. 2020, "Improving the affordability of robustness training for DNNs"): the prior art closest to the gate,
  which also saves the attack's cost while the model is still poor, with a fixed switch instead of a measured one.

All three use the attack library's L-inf PGD (``pgd_linf``, random start, step 2.5 * eps / steps) on the
identity logits without margin, in the model's eval mode, with ``attack_steps`` steps (fewer than the
evaluation's PGD-10: the training budget), a fresh random start per batch drawn from the run's seed. They
share the supervised stage's batches, optimizer, schedule and :func:`~benchmark.train.loop.fit`.

Histories are :func:`~benchmark.train.loop.fit`'s plus ``passes`` (:func:`_fit`), ``adversarial_fraction`` (share of steps trained
with adversarial batches / the term on: 1.0 for PGD-AT and TRADES) and, for the hardened model, ``gate``
(:meth:`PerformanceGate.log`). Validation returns ``loss_a`` (clean CE) and ``loss_adv`` (CE under the
training attack) on the validation images, and, given :class:`~benchmark.train.common.ValPairs`, the clean
verification accuracy on them (``val_accuracy``, logged with ``best_epoch``); ``loss_adv`` is the tracked
(convergence) loss.

All three keep the last epoch's weights, whatever ``TrainConfig.keep_best`` says: picking the epoch of best
clean accuracy would favour the epoch where the adversarial objective had least effect, i.e. select the least
robust model (robust and clean accuracy trade off, Tsipras et al. 2019, "Robustness May Be at Odds with
Accuracy"), and a robust selection rule would need a robustness evaluation per epoch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.attacks import create_attack
from benchmark.attacks.objectives import Objective, classification
from benchmark.models.face_model import FaceModel
from benchmark.models.heads import Head
from benchmark.train import distributed
from benchmark.train.common import IdentityClasses, TrainConfig, ValPairs, load_batch, val_pair_accuracy
from benchmark.train.gate import PerformanceGate
from benchmark.train.hardening import HardeningTerm, other_identities
from benchmark.train.loader import TrainBatches
from benchmark.train.loop import ACCURACY, StepFn, fit, labelled_mask, model_device, val_slices, weighted_mean
from benchmark.train.trades import kl_objective, trades_loss


class AdversarialBatches:
    """Shared plumbing: source batches with labels, the training attack, and the validation losses.

    eps: L-inf budget in [0, 1] pixel units (> 0); attack_steps: PGD steps (>= 1); val_pairs: optional
    verification pairs of validation identities (clean ``val_accuracy`` is then logged every epoch).
    """

    def __init__(
        self,
        model: FaceModel,
        head: Head,
        images: np.ndarray,
        labels: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        cfg: TrainConfig,
        eps: float,
        attack_steps: int,
        val_pairs: ValPairs | None = None,
    ) -> None:
        if not (0 < eps <= 1) or attack_steps < 1:
            raise ValueError(f"adversarial training needs eps in (0, 1] and attack_steps >= 1, got {eps}, {attack_steps}")
        self.model, self.head, self.images, self.labels, self.cfg = model, head, images, labels, cfg
        self.eps, self.attack_steps, self.val_pairs = float(eps), int(attack_steps), val_pairs
        self.classes = IdentityClasses(labels[train])
        self.classes.check(head.num_classes)
        self.val = val[labelled_mask(self.classes, labels, val)]
        self.device = model_device(model)
        head.to(self.device)  # the head trains where the model is
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.batches = TrainBatches(images, train, cfg.batch_size, self.device, cfg.augment, self.rng,
                                    cfg.loader_workers, cfg.seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A source batch: images (B, 3, H, W) in [0, 1] (augmented as ``cfg.augment``), labels (B,); this
        process's share of it under torchrun (:func:`~benchmark.train.distributed.shard`)."""
        idx = self.batches.draw()
        x = self.batches.load(idx)
        return distributed.shard(x), distributed.shard(self.classes.targets(self.labels[idx], self.device))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Identity logits without margin, (N, C): what the attacks and the consistency term see."""
        return self.head.logits(self.model(x))

    def attack(self, x: torch.Tensor, objective: Objective, seed: int | None = None) -> torch.Tensor:
        """PGD-``attack_steps`` in the eps ball; the random start is seeded from the run's generator (plus the
        process's rank under torchrun, so the processes' shares start apart) unless ``seed`` is given."""
        seed = int(self.rng.integers(2**31)) + distributed.rank() if seed is None else seed
        attack = create_attack("pgd_linf", eps=self.eps, steps=self.attack_steps, random_start=True, seed=seed)
        return attack(self.model, x, objective)

    def validate(self) -> dict[str, float]:
        """Clean CE (``loss_a``) and CE under the training attack (``loss_adv``, fixed seed) on the
        validation images of training identities, with the head's margin; with ``val_pairs`` also the clean
        verification accuracy on them (``val_accuracy``)."""
        clean, adv = [], []
        for part in val_slices(len(self.val)):
            idx = self.val[part]
            x = load_batch(self.images, idx, self.device)
            y = self.classes.targets(self.labels[idx], self.device)
            x_adv = self.attack(x, classification(self.logits, y), seed=self.cfg.seed)
            clean.append((F.cross_entropy(self.head(self.model(x), y), y).item(), len(idx)))
            adv.append((F.cross_entropy(self.head(self.model(x_adv), y), y).item(), len(idx)))
        out = {"loss_a": weighted_mean(clean), "loss_adv": weighted_mean(adv)}
        if self.val_pairs is not None:
            out[ACCURACY] = val_pair_accuracy(self.model, self.val_pairs)[0]
        return out


def _fit(batches: AdversarialBatches, step: StepFn, steps: int, name: str) -> dict:
    """:func:`~benchmark.train.loop.fit` tracking ``loss_adv`` and keeping the last epoch (module docstring), plus
    ``passes``: the images forwarded through the model with autograd on during the training steps (each followed
    by a backward pass: the weight update's or an attack step's input gradient), summed over the processes under
    torchrun; the machine-independent cost that the gate's saving is measured in (validation not included)."""
    passes = 0

    def count(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal passes
        if torch.is_grad_enabled():
            passes += len(args[0])

    def counted() -> tuple[torch.Tensor, dict[str, float]]:
        handle = batches.model.register_forward_hook(count)
        try:
            return step()
        finally:
            handle.remove()

    history = fit(
        [batches.model, batches.head], counted, batches.validate, steps, batches.cfg.batch_size, batches.cfg,
        ("loss_adv",), f"{name} {batches.model.backbone_name}", keep_best=False, body=batches.model,
    )
    history["passes"] = round(distributed.mean(passes) * distributed.world_size())
    return history


def _steps(train: np.ndarray, cfg: TrainConfig, epoch_images: int | None) -> int:
    return -(-(epoch_images or len(train)) // cfg.batch_size)


def train_pgd_at(
    model: FaceModel, head: Head, images: np.ndarray, labels: np.ndarray, train: np.ndarray, val: np.ndarray,
    cfg: TrainConfig, eps: float, attack_steps: int, epoch_images: int | None = None,
    val_pairs: ValPairs | None = None,
) -> dict:
    """Madry et al.'s PGD-AT: every step minimises CE(head(model(x_adv)), y), x_adv = untargeted PGD.

    images uint8 (N, H, W, 3), labels (N,), train/val index arrays; epoch_images as in
    :func:`~benchmark.train.loop.train_supervised`; val_pairs as in :class:`AdversarialBatches`.
    Returns the history (module docstring).
    """
    b = AdversarialBatches(model, head, images, labels, train, val, cfg, eps, attack_steps, val_pairs)
    history = _fit(b, lambda: _pgd_at_step(b), _steps(train, cfg, epoch_images), "pgd_at")
    history["adversarial_fraction"] = 1.0
    return history


def _pgd_at_step(b: AdversarialBatches) -> tuple[torch.Tensor, dict[str, float]]:
    """One PGD-AT step on the next source batch: CE of the head on its untargeted PGD images."""
    x, y = b.next()
    x_adv = b.attack(x, classification(b.logits, y))
    loss = F.cross_entropy(b.head(b.model(x_adv), y), y)
    return loss, {"loss": loss.item()}


def train_natural_then_at(
    model: FaceModel, head: Head, images: np.ndarray, labels: np.ndarray, train: np.ndarray, val: np.ndarray,
    cfg: TrainConfig, eps: float, attack_steps: int, switch: float, epoch_images: int | None = None,
    val_pairs: ValPairs | None = None,
) -> dict:
    """Natural training, then PGD-AT: the first ``round(switch * max_epochs * steps_per_epoch)`` steps minimise the
    source batch's CE, every later one is a PGD-AT step (:func:`train_pgd_at`); ``switch`` in [0, 1). Logs ``on``
    (0 natural, 1 adversarial) per step; ``adversarial_fraction`` is the share of steps run adversarially.
    Arguments as :func:`train_pgd_at`."""
    if not 0 <= switch < 1:
        raise ValueError(f"natural_then_at switch must be in [0, 1), got {switch}")
    b = AdversarialBatches(model, head, images, labels, train, val, cfg, eps, attack_steps, val_pairs)
    steps = _steps(train, cfg, epoch_images)
    natural = round(switch * cfg.max_epochs * steps)
    done = {"natural": 0, "adversarial": 0}

    def step() -> tuple[torch.Tensor, dict[str, float]]:
        if done["natural"] < natural:
            done["natural"] += 1
            x, y = b.next()
            loss = F.cross_entropy(head(model(x), y), y)
            return loss, {"loss": loss.item(), "on": 0.0}
        done["adversarial"] += 1
        loss, logged = _pgd_at_step(b)
        return loss, {**logged, "on": 1.0}

    history = _fit(b, step, steps, "natural_then_at")
    history["adversarial_fraction"] = done["adversarial"] / max(1, sum(done.values()))
    return history


def train_trades(
    model: FaceModel, head: Head, images: np.ndarray, labels: np.ndarray, train: np.ndarray, val: np.ndarray,
    cfg: TrainConfig, eps: float, attack_steps: int, beta: float, epoch_images: int | None = None,
    val_pairs: ValPairs | None = None,
) -> dict:
    """TRADES: x' = PGD maximising KL(p(x) || p(x')) from eval-mode source logits, then minimise
    CE(x) + beta * KL(p(x) || p(x')) (beta >= 0). Arguments as :func:`train_pgd_at`."""
    if beta < 0:
        raise ValueError(f"TRADES beta must be >= 0, got {beta}")
    b = AdversarialBatches(model, head, images, labels, train, val, cfg, eps, attack_steps, val_pairs)

    def step() -> tuple[torch.Tensor, dict[str, float]]:
        x, y = b.next()
        model.eval()
        with torch.no_grad():
            source = b.logits(x)
        x_adv = b.attack(x, kl_objective(b.logits, source))
        model.train()
        emb = model(x)
        loss, kl = trades_loss(head(emb, y), head.logits(emb), b.logits(x_adv), y, beta)
        loss_a = F.cross_entropy(head(emb, y), y)
        return loss, {"loss": loss.item(), "loss_a": loss_a.item(), "term": beta * kl.item()}

    history = _fit(b, step, _steps(train, cfg, epoch_images), "trades")
    history["adversarial_fraction"] = 1.0
    return history


def train_hardened(
    model: FaceModel, head: Head, images: np.ndarray, labels: np.ndarray, train: np.ndarray, val: np.ndarray,
    cfg: TrainConfig, eps: float, attack_steps: int, term: HardeningTerm, gate: PerformanceGate,
    epoch_images: int | None = None, val_pairs: ValPairs | None = None,
) -> dict:
    """The patent's dynamic training. Each step draws a source batch (x, y) of B images:

    * gate off: minimise CE(head(model(x)), y) (the source batch's overall loss);
    * gate on: x_adv = untargeted PGD on the first B//2 images, x_tgt = targeted PGD on the others toward
      random other identities t; minimise CE over the adversarial batch [x_adv, x_tgt] plus
      ``term``(source logits, x_adv logits, x_tgt embeddings, head centres, y, t).

    Either way the source batch's CE is measured and fed to ``gate``, which sets the next step's mode.
    Per-step logs (epoch means in the curves, 0 while off): loss, loss_a (source CE), term, consistency,
    target_margin, on. Arguments as :func:`train_pgd_at`; the gate should be fresh (no steps yet).
    """
    if gate.steps:
        raise ValueError(f"train_hardened needs a fresh gate, got one with {gate.steps} recorded steps")
    b = AdversarialBatches(model, head, images, labels, train, val, cfg, eps, attack_steps, val_pairs)
    targets_gen = torch.Generator().manual_seed(cfg.seed)
    half = cfg.batch_size // distributed.world_size() // 2  # of this process's share

    def step() -> tuple[torch.Tensor, dict[str, float]]:
        x, y = b.next()
        if not gate.on:
            loss = F.cross_entropy(head(model(x), y), y)
            gate.update(distributed.mean(loss.item()))
            zero = {"term": 0.0, "consistency": 0.0, "target_margin": 0.0, "on": 0.0}
            return loss, {"loss": loss.item(), "loss_a": loss.item(), **zero}
        t = other_identities(y[half:], head.num_classes, targets_gen)
        x_adv = b.attack(x[:half], classification(b.logits, y[:half]))
        x_tgt = b.attack(x[half:], classification(b.logits, t, targeted=True))
        e_src, e_adv = model(x), model(torch.cat([x_adv, x_tgt]))
        loss_a = F.cross_entropy(head(e_src, y), y)
        reg, parts = term(head.logits(e_src[:half]), head.logits(e_adv[:half]), e_adv[half:], head.weight, y[half:], t)
        loss = F.cross_entropy(head(e_adv, y), y) + reg
        gate.update(distributed.mean(loss_a.item()))
        return loss, {"loss": loss.item(), "loss_a": loss_a.item(), "term": reg.item(), **parts, "on": 1.0}

    history = _fit(b, step, _steps(train, cfg, epoch_images), "hardened")
    history["gate"] = gate.log()
    history["adversarial_fraction"] = gate.fraction_on
    return history
