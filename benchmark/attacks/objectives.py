"""Per-sample objectives that every attack MAXIMIZES: ``objective(model, x_adv) -> (N,)``.

* :func:`dodging` (verification, untargeted): ``-cos(model.embed(x), reference)``; raising it pushes a
  genuine pair's cosine similarity below the decision threshold (Sharif et al. 2016, "Accessorize to a
  Crime"; the dodging/impersonation split of the RobFR benchmark, Yang et al. 2020);
* :func:`impersonation` (verification, targeted): ``cos(model.embed(x), target)``; raising it pulls an
  impostor pair's similarity above the threshold, toward the identity whose embedding is ``target``;
* :func:`verification`: both at once, per pair (dodging for genuine pairs, impersonation for impostor
  pairs), so one batch attacks a balanced set of pairs; given the model's decision threshold it is the two-class
  margin ``+-(cos - threshold)``, positive once the pair's decision is flipped (ties aside);
* :func:`classification` (closed-set identification): cross-entropy of identity logits, negated when
  targeted (as torchattacks' ``PGD``/``FGSM`` do with a mean; here per sample).

``model`` is a :class:`~benchmark.models.face_model.FaceModel` for the embedding objectives (its ``embed``
gives L2-normalized (N, D) embeddings); references and targets are (N, D) unit embeddings, detached.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Objective = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _embeddings(value: torch.Tensor | None, what: str, role: str) -> torch.Tensor:
    if value is None:
        raise ValueError(f"{what} attack needs a {role}: (N, D) unit embeddings of the pair's other image, got None")
    if not isinstance(value, torch.Tensor) or value.ndim != 2:
        raise ValueError(f"{what} {role} must be a (N, D) tensor, got {getattr(value, 'shape', type(value).__name__)}")
    return F.normalize(value.detach().float(), dim=1)


def dodging(reference: torch.Tensor) -> Objective:
    """Untargeted verification objective ``-cos(model.embed(x), reference)``, reference (N, D)."""
    ref = _embeddings(reference, "dodging", "reference")

    def objective(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return -(model.embed(x) * ref.to(x.device)).sum(dim=1)

    return objective


def impersonation(target: torch.Tensor | None) -> Objective:
    """Targeted verification objective ``cos(model.embed(x), target)``, target (N, D) embeddings of the
    identity to impersonate; ``None`` raises ValueError (a targeted attack needs a target)."""
    if target is None:
        raise ValueError("targeted attack needs a target: impersonation(target) takes (N, D) embeddings of the identity to impersonate, got None")
    tgt = _embeddings(target, "impersonation", "target")

    def objective(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return (model.embed(x) * tgt.to(x.device)).sum(dim=1)

    return objective


def verification(other: torch.Tensor, is_same: torch.Tensor, threshold: float = 0.0) -> Objective:
    """Dodging for genuine pairs (``is_same`` True) and impersonation for impostor pairs, per row.

    other:     (N, D) embeddings of each pair's other (unattacked) image.
    is_same:   (N,) bool, True for genuine pairs.
    threshold: the model's cosine decision threshold (a pair is "same" at cos >= threshold).
    Returns ``sign * (cos(model.embed(x), other) - threshold)`` with sign -1 for genuine, +1 for impostor pairs:
    the two-class margin, > 0 once the attack has flipped the decision. The offset moves no gradient.
    """
    ref = _embeddings(other, "verification", "reference")
    same = torch.as_tensor(is_same, dtype=torch.bool)
    if same.shape != (ref.shape[0],):
        raise ValueError(f"is_same must have shape ({ref.shape[0]},), got {tuple(same.shape)}")
    sign = 1.0 - 2.0 * same.float()

    def objective(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return sign.to(x.device) * ((model.embed(x) * ref.to(x.device)).sum(dim=1) - threshold)

    return objective


def classification(
    forward: Callable[[torch.Tensor], torch.Tensor], labels: torch.Tensor | None, targeted: bool = False
) -> Objective:
    """Closed-set objective on identity logits: ``CE(forward(x), labels)`` per sample, or its negation
    when ``targeted`` (then ``labels`` are the target identities).

    forward: x (N, 3, H, W) in [0, 1] -> logits (N, C); labels: (N,) int64 class indices.
    """
    if labels is None:
        what = "targeted attack needs a target: labels are the target identities" if targeted else "classification needs labels"
        raise ValueError(f"{what}, got None")
    sign = -1.0 if targeted else 1.0

    def objective(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return sign * F.cross_entropy(forward(x), labels.to(x.device), reduction="none")

    return objective
