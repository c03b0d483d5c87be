"""Gradient inversion: reconstruct an institution's faces from one plaintext local update.

Implements the optimization attack of Zhu et al. 2019, "Deep Leakage from Gradients" (DLG, NeurIPS):
start from random dummy images and move them until the update they would produce matches the observed
one, with the matching objective and prior of Geiping et al. 2020, "Inverting Gradients -- How easy is
it to break privacy in federated learning?" (NeurIPS): 1 - cosine similarity of the whole update
vectors, a total-variation (TV) prior, Adam on pixels boxed to [0, 1] with step decay, best iterate
kept. DLG's squared Euclidean distance is the alternative ``objective="l2"``.

Threat model. The attacker is the party that sees one institution's individual update: the third party
in ``third_party`` mode (it decrypts every update), or any server in plaintext FedAvg. It knows the
architecture and current weights of the shared embedding network (it sent them) and the batch shape.
It does not know the institution's identity classifier head, which never leaves the institution
(institutions' identities are disjoint), nor the labels. Two settings:

* ``threat="agnostic"`` (our federation). The shared network's gradient of *any* head and loss is
  sum_i J_i(theta)^T g_i, with J_i the Jacobian of image i's embedding e_i (D,) and g_i = dL/de_i. The
  attacker does not need the head: it treats G = (g_1..g_B) (B, D) as free variables and optimizes them
  jointly with the images, matching the gradient of sum_i <e_i, g_i>. Exact for every head, no labels
  needed (so iDLG's label inference, Zhao et al. 2020, which reads labels off the last layer's gradient,
  does not apply: that layer is the private head).
* ``threat="known_head"``: the attacker also knows the head and the labels (the worst case, an upper
  bound on leakage) and matches the gradient of the same cross-entropy the institution computed.

BatchNorm: the ReLU/BatchNorm networks here invert worse than the sigmoid networks of the DLG paper.
With ``bn_mode="eval"`` the local step uses the running statistics (a batch of one is possible); with
``"train"`` it uses batch statistics, and the attacker does the same on its dummy batch (BN is then a
deterministic function of the batch, so the gradients still match at the true images).

Shapes: images float32 (B, 3, H, W) in [0, 1]; labels int64 (B,) head classes; an update is a list of
tensors shaped like ``[p for p in model.parameters()]``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from benchmark.models.face_model import FaceModel
from benchmark.privacy.settings import BN_MODES, PrivacyConfig


@dataclass
class Reconstruction:
    """What the attack returns: ``images`` float32 (B, 3, H, W) in [0, 1] (the best iterate), ``start``
    (the random start, the floor to compare with), ``loss`` (the best objective value), ``history``
    (objective per iteration), ``seconds`` (wall clock)."""

    images: torch.Tensor
    start: torch.Tensor
    loss: float
    history: list[float]
    seconds: float


MAX_BATCH = 8  # the attack's limit; leakage falls fast with the batch size (PrivacyConfig.batch_size)


def _check_batch(images: torch.Tensor, labels: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.float32:
        raise ValueError(f"images must be float32 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    if images.shape[0] < 1:
        raise ValueError("batch size must be at least 1, got an empty batch")
    if tuple(labels.shape) != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")


def _attacked_copy(model: FaceModel, bn_mode: str, batch: int) -> FaceModel:
    """A copy of ``model`` in ``bn_mode`` (the caller's model, its mode and BN statistics stay untouched)."""
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")
    if bn_mode == "train" and batch < 2:
        raise ValueError("bn_mode 'train' needs a batch of at least 2 (BatchNorm statistics of one sample)")
    twin = copy.deepcopy(model)
    return twin.train(bn_mode == "train")


def local_update(
    model: FaceModel, head: nn.Module, images: torch.Tensor, labels: torch.Tensor, bn_mode: str = "eval"
) -> list[torch.Tensor]:
    """The update an institution sends for one local step: the gradient of the cross-entropy of
    ``head(model(images), labels)`` with respect to the shared network's parameters only (the head's
    own gradient stays private). images (B, 3, H, W) in [0, 1], labels (B,) int64 head classes.
    Returns detached tensors, one per ``model.parameters()``; ``model`` and ``head`` are not modified."""
    _check_batch(images, labels)
    twin = _attacked_copy(model, bn_mode, len(images))
    loss = F.cross_entropy(head(twin(images), labels), labels)
    return [g.detach() for g in torch.autograd.grad(loss, list(twin.parameters()))]


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels (anisotropic TV) of (B, 3, H, W) images."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def update_distance(update: list[torch.Tensor], target: list[torch.Tensor], objective: str) -> torch.Tensor:
    """1 - cosine similarity of the two updates as single vectors (Geiping et al. 2020), or their
    squared Euclidean distance (Zhu et al. 2019) for ``objective="l2"``."""
    if objective == "l2":
        return sum(((u - t) ** 2).sum() for u, t in zip(update, target))
    if objective != "cosine":
        raise ValueError(f"objective must be 'cosine' or 'l2', got {objective!r}")
    dot = sum((u * t).sum() for u, t in zip(update, target))
    norm_u = torch.sqrt(sum((u * u).sum() for u in update))
    norm_t = torch.sqrt(sum((t * t).sum() for t in target))
    return 1.0 - dot / (norm_u * norm_t).clamp_min(1e-12)


def invert_update(
    model: FaceModel,
    update: list[torch.Tensor],
    batch_shape: tuple[int, int, int, int],
    cfg: PrivacyConfig,
    seed: int,
    head: nn.Module | None = None,
    labels: torch.Tensor | None = None,
    progress: bool = False,
) -> Reconstruction:
    """Reconstruct the (B, 3, H, W) batch behind ``update`` (see the module docstring for the threat model).

    model:       the shared network with the weights the institution started its step from.
    update:      the observed gradient, one tensor per ``model.parameters()`` (see :func:`local_update`).
    batch_shape: (B, 3, H, W) of the attacked batch, 1 <= B <= 8 (``MAX_BATCH``).
    cfg:         iterations, lr, tv_weight, objective, threat, bn_mode (``cfg.batch_size`` is the caller's cap).
    seed:        seeds the random start (uniform pixels) and the free embedding gradients.
    head, labels: required with ``cfg.threat == "known_head"``, ignored otherwise.
    """
    params = list(model.parameters())
    if len(update) != len(params) or any(u.shape != p.shape for u, p in zip(update, params)):
        raise ValueError("update must hold one tensor per model parameter, with the same shapes")
    if len(batch_shape) != 4 or batch_shape[1] != 3 or min(batch_shape) < 1:
        raise ValueError(f"batch_shape must be (B, 3, H, W) with positive sizes, got {tuple(batch_shape)}")
    if not 1 <= batch_shape[0] <= MAX_BATCH:
        raise ValueError(f"batch size must be in [1, {MAX_BATCH}], got {batch_shape[0]}")
    if cfg.threat == "known_head" and (head is None or labels is None):
        raise ValueError("threat 'known_head' needs the head and the labels")
    start = time.perf_counter()
    twin = _attacked_copy(model, cfg.bn_mode, batch_shape[0])
    twin.requires_grad_(True)
    weights = list(twin.parameters())
    target = [u.detach().to(weights[0].device) for u in update]
    gen = torch.Generator().manual_seed(seed)
    begin = torch.rand(batch_shape, generator=gen)
    x = begin.clone().to(weights[0].device).requires_grad_(True)
    free = torch.randn(batch_shape[0], twin.embedding_dim, generator=gen).to(x.device).requires_grad_(True)
    variables = [x] if cfg.threat == "known_head" else [x, free]
    opt = torch.optim.Adam(variables, lr=cfg.lr)
    milestones = [int(cfg.iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)]
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
    best, best_loss, history = x.detach().clone(), float("inf"), []
    for _ in tqdm(range(cfg.iterations), desc="gradient inversion", disable=not progress):
        emb = twin(x)
        if cfg.threat == "known_head":
            inner = F.cross_entropy(head(emb, labels), labels)
        else:
            inner = (emb * free).sum()
        dummy = torch.autograd.grad(inner, weights, create_graph=True)
        match = update_distance(dummy, target, cfg.objective)
        loss = match + cfg.tv_weight * total_variation(x)
        history.append(float(match.detach()))
        if history[-1] < best_loss:
            best_loss, best = history[-1], x.detach().clone()
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=variables)
        opt.step()
        schedule.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    return Reconstruction(best.cpu(), begin, best_loss, history, time.perf_counter() - start)
