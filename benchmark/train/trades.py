"""TRADES (Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness and Accuracy", ICML).

TRADES minimises CE(f(x), y) + beta * KL(p(x) || p(x')), where p = softmax of the identity logits and
x' maximises that KL within the L-inf ball around x (its inner maximisation, run here with the attack
library's PGD and :func:`kl_objective`). The KL is the consistency part that the hardened variant's
regularizer (:mod:`benchmark.train.hardening`) reuses between source and adversarial samples.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Forward = Callable[[torch.Tensor], torch.Tensor]


def consistency_kl(logits_source: torch.Tensor, logits_adv: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p(x) || p(x')) in nats, (N, C), (N, C) -> (N,); 0 where both logits give the same
    distribution. Gradients flow into both arguments (as in TRADES)."""
    log_p = F.log_softmax(logits_source, dim=1)
    log_q = F.log_softmax(logits_adv, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def kl_objective(forward: Forward, logits_source: torch.Tensor) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """TRADES' inner objective for the attack library: x' -> per-sample KL(p(x) || p(x')), (N,), with the
    source logits (N, C) held fixed (detached). ``forward`` maps images (N, 3, H, W) in [0, 1] to logits."""
    fixed = logits_source.detach()

    def objective(model: nn.Module, x_adv: torch.Tensor) -> torch.Tensor:
        return consistency_kl(fixed, forward(x_adv))

    return objective


def trades_loss(
    logits_source_margin: torch.Tensor,
    logits_source: torch.Tensor,
    logits_adv: torch.Tensor,
    labels: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TRADES' outer loss: CE on the source logits with the head's training margin, (N, C) and labels (N,),
    plus ``beta`` (>= 0) times the mean consistency KL between the source and adversarial logits without
    margin. Returns (loss, mean KL)."""
    kl = consistency_kl(logits_source, logits_adv).mean()
    return F.cross_entropy(logits_source_margin, labels) + beta * kl, kl
