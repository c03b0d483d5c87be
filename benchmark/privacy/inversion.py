"""Gradient inversion of the update an institution ships: several local optimizer steps over a batch of faces.

Implements the optimization attack of Zhu et al. 2019, "Deep Leakage from Gradients" (DLG, NeurIPS), in the
multi-step form of Geiping et al. 2020, "Inverting Gradients -- How easy is it to break privacy in federated
learning?" (NeurIPS, section 6): start from random dummy images, replay the institution's local training on
them (the same optimizer, learning rates, weight decay and batches; differentiably unrolled), and move them
until the weight change the replay produces matches the observed one. Objective and prior as Geiping et al.:
1 - cosine similarity of the whole update vectors, a total-variation (TV) prior, Adam on pixels boxed to
[0, 1] with step decay, best iterate kept. DLG's squared Euclidean distance is the alternative
``objective="l2"``.

Threat model. The attacker is the party that sees one institution's individual update: the third party in
``third_party`` mode (it decrypts every update), or any server in plaintext FedAvg. It knows the
architecture and current weights of the shared embedding network (it sent them), the local training's
protocol (:class:`LocalTraining`: optimizer, per-step learning rates, weight decay, faces per step, steps),
and nothing else: not the order in which the institution drew its faces, nor its augmentation (a flipped
face is just another image to reconstruct), nor, with ``threat="agnostic"``, its identity head or labels.

* ``threat="agnostic"`` (our federation). The shared network's gradient of *any* head and loss is
  sum_i J_i(theta)^T g_i, with J_i the Jacobian of image i's embedding e_i (D,) and g_i = dL/de_i. The
  attacker does not need the head: at every replayed step it treats G_s = (g_1..g_B) (B, D) as free
  variables, optimized jointly with the images, and takes the gradient of sum_i <e_i, g_i>. Exact for every
  head at every step (so iDLG's label inference, Zhao et al. 2020, which reads labels off the last layer's
  gradient, does not apply: that layer is the private head).
* ``threat="known_head"``: the attacker also knows the head's weights and the labels (the worst case, an
  upper bound on leakage) and replays the same cross-entropy, training the head along with the network.

BatchNorm runs on batch statistics in the replay, as in the institution's training (so a step needs at
least 2 faces). Adam divides each gradient entry by its own running magnitude, so its first step is nearly a
sign and an exact replay passes the attack almost no gradient; with ``smoothing`` > 0 the attacker replays
Adam with an epsilon of that many times each tensor's mean |gradient| instead (a soft sign, a surrogate of our
own), which it then matches to the exact update.

Shapes: images float32 (N, 3, H, W) in [0, 1]; labels int64 (N,) head classes; an update is a list of
tensors shaped like ``[p for p in model.parameters()]`` (the trained weights minus the starting ones).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from benchmark.models.face_model import FaceModel
from benchmark.privacy.settings import PrivacyConfig
from benchmark.train.common import SGD_MOMENTUM

OPTIMIZERS = ("adamw", "sgd")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.AdamW's defaults, which the local training uses
MAX_FACES = 512  # the attack's limit on faces in the attacked update


@dataclass(frozen=True)
class LocalTraining:
    """The protocol of an institution's local training, as the attacker knows it (the federation's settings).

    optimizer: "adamw" (torch's AdamW, decoupled weight decay) or "sgd" (Nesterov momentum 0.9, L2 decay);
    lrs: the learning rate of each optimizer step, in order (the schedule applied); weight_decay;
    batch: faces per step; batches: distinct batches (the institution holds batch x batches faces and takes
    the steps over them in turn, so ``len(lrs) / batches`` epochs)."""

    optimizer: str
    lrs: tuple[float, ...]
    weight_decay: float
    batch: int
    batches: int

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.batch < 2:
            raise ValueError(f"a local step needs at least 2 faces (BatchNorm statistics of one sample), got {self.batch}")
        if not 1 <= self.batches <= len(self.lrs) or self.batch * self.batches > MAX_FACES:
            raise ValueError(f"batches must be in [1, steps = {len(self.lrs)}] with batch x batches <= {MAX_FACES} faces, "
                             f"got {self.batches} batches of {self.batch}")

    @property
    def faces(self) -> int:
        return self.batch * self.batches


@dataclass
class Reconstruction:
    """What the attack returns: ``images`` float32 (N, 3, H, W) in [0, 1] (the best iterate, in no particular
    order), ``start`` (the random start, the floor to compare with), ``loss`` (the best objective value),
    ``history`` (objective per iteration), ``seconds`` (wall clock)."""

    images: torch.Tensor
    start: torch.Tensor
    loss: float
    history: list[float]
    seconds: float


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


def _step(weights: list[torch.Tensor], grads: tuple[torch.Tensor, ...], state: list[dict], lr: float, t: int,
          training: LocalTraining, smoothing: float) -> list[torch.Tensor]:
    """One optimizer step (t = 1, 2, ...) as torch.optim computes it, out of place so it stays differentiable;
    with ``smoothing`` > 0 Adam's epsilon is ``smoothing`` x the mean |gradient| of the tensor instead."""
    out = []
    for w, g, s in zip(weights, grads, state):
        if training.optimizer == "adamw":
            (b1, b2), w = ADAM_BETAS, w * (1.0 - lr * training.weight_decay)
            s["m"] = b1 * s.get("m", 0.0) + (1.0 - b1) * g
            s["v"] = b2 * s.get("v", 0.0) + (1.0 - b2) * g * g
            eps = smoothing * float(g.detach().abs().mean()) if smoothing else ADAM_EPS
            denom = ((s["v"] + 1e-30).sqrt() / (1.0 - b2**t) ** 0.5) + eps  # 1e-30: a finite slope at v = 0
            out.append(w - lr / (1.0 - b1**t) * s["m"] / denom)
        else:
            g = g + training.weight_decay * w
            s["b"] = g if t == 1 else SGD_MOMENTUM * s["b"] + g
            out.append(w - lr * (g + SGD_MOMENTUM * s["b"]))
    return out


def replay(
    body: FaceModel, head: nn.Module | None, x: torch.Tensor, free: torch.Tensor | None, labels: torch.Tensor | None,
    training: LocalTraining,
    smoothing: float = 0.0,
) -> list[torch.Tensor]:
    """The weight change of ``training``'s steps on the images ``x`` (N = batch x batches, step s on batch
    s mod batches), differentiable in ``x`` and ``free``: the update a body (and ``head``) in train mode would
    ship. With ``free`` (batches, batch, D) each step's loss is sum_i <e_i, free_i> (the agnostic
    attacker); otherwise the cross-entropy of ``head`` on ``labels`` (N,), the head trained along.
    Frozen parameters (no ``requires_grad``) stay where they are. ``smoothing`` > 0 softens Adam's division by
    each entry's own magnitude (the attacker's surrogate, see :class:`~benchmark.privacy.settings.PrivacyConfig`);
    0 replays torch's AdamW exactly. One tensor per ``body.parameters()``."""
    names = [n for n, p in body.named_parameters() if p.requires_grad]
    buffers = dict(body.named_buffers())
    start = {n: p.detach() for n, p in body.named_parameters()}
    heads = {} if free is not None else {n: p.detach() for n, p in head.named_parameters()}
    weights = [start[n].clone().requires_grad_(True) for n in names]
    weights += [p.clone().requires_grad_(True) for p in heads.values()]
    state: list[dict] = [{} for _ in weights]
    for t, lr in enumerate(training.lrs, 1):
        part = slice(((t - 1) % training.batches) * training.batch, ((t - 1) % training.batches + 1) * training.batch)
        values = {**start, **dict(zip(names, weights)), **buffers}
        emb = functional_call(body, values, (x[part],))
        if free is not None:
            loss = (emb * free[(t - 1) % training.batches]).sum()
        else:
            head_values = dict(zip(heads, weights[len(names):]))
            loss = F.cross_entropy(functional_call(head, head_values, (emb, labels[part])), labels[part])
        grads = torch.autograd.grad(loss, weights, create_graph=True)
        weights = _step(weights, grads, state, lr, t, training, smoothing)
    moved = dict(zip(names, weights))
    return [moved[n] - start[n] if n in moved else torch.zeros_like(start[n]) for n in start]


def invert_update(
    model: FaceModel,
    update: list[torch.Tensor],
    training: LocalTraining,
    image_shape: tuple[int, int, int],
    cfg: PrivacyConfig,
    seed: int,
    head: nn.Module | None = None,
    labels: torch.Tensor | None = None,
    progress: bool = False,
) -> Reconstruction:
    """Reconstruct the ``training.faces`` images behind ``update`` (see the module docstring for the threat model).

    model:       the shared network with the weights the institution started its local training from.
    update:      the observed weight change, one tensor per ``model.parameters()``.
    training:    the local training's protocol; image_shape: (3, H, W) of a face.
    cfg:         iterations, lr, tv_weight, objective, threat, smoothing.
    seed:        seeds the random start (uniform pixels) and the free embedding gradients.
    head, labels: the head at the start of the local training and the faces' classes in the order of the
                 replayed batches; required with ``cfg.threat == "known_head"``, ignored otherwise.
    """
    params = list(model.parameters())
    if len(update) != len(params) or any(u.shape != p.shape for u, p in zip(update, params)):
        raise ValueError("update must hold one tensor per model parameter, with the same shapes")
    if len(image_shape) != 3 or image_shape[0] != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (3, H, W) with positive sizes, got {tuple(image_shape)}")
    known = cfg.threat == "known_head"
    if known and (head is None or labels is None or tuple(labels.shape) != (training.faces,)):
        raise ValueError(f"threat 'known_head' needs the head and one label per face ({training.faces})")
    start = time.perf_counter()
    body = copy.deepcopy(model).train()
    twin = copy.deepcopy(head).train() if known else None
    device = params[0].device
    target = [u.detach().to(device) for u in update]
    gen = torch.Generator().manual_seed(seed)
    begin = torch.rand((training.faces, *image_shape), generator=gen)
    x = begin.clone().to(device).requires_grad_(True)
    free = torch.randn(training.batches, training.batch, model.embedding_dim, generator=gen).to(device)
    free.requires_grad_(not known)
    variables = [x] if known else [x, free]
    opt = torch.optim.Adam(variables, lr=cfg.lr)
    milestones = [int(cfg.iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)]
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
    best, best_loss, history = x.detach().clone(), float("inf"), []
    for _ in tqdm(range(cfg.iterations), desc="gradient inversion", disable=not progress):
        moved = replay(body, twin, x, None if known else free, labels, training, cfg.smoothing)
        match = update_distance(moved, target, cfg.objective)
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
