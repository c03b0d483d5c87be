"""CW-L2: Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural Networks" (IEEE S&P),
adapted to the embedding objectives and to a fixed L2 budget.

The original minimizes ``||delta||_2^2 + c * f(x + delta)`` over ``w`` in tanh space
(``x + delta = (tanh(w) + 1) / 2``, so every iterate lies in [0, 1] without clipping), with Adam, where
``f`` is a logit margin and ``c`` is found by binary search. Here, exactly:

* the margin ``f`` is replaced by the negated attack objective: per sample the loss is
  ``||x_adv - x||_2^2 - c * objective(model, x_adv)`` (objective from
  :mod:`benchmark.attacks.objectives`, e.g. ``-cos`` for dodging), with a fixed ``c`` (default 10, no
  binary search: that would multiply the cost by its number of rounds);
* ``w`` starts at ``atanh(2x - 1)`` (the clean image, pixels squeezed into (0, 1) by 1e-6) and takes
  ``steps`` Adam steps (Kingma & Ba 2015; beta 0.9 / 0.999), written out here so each sample has its own
  learning rate: ``alpha`` in tanh units, default ``5 * eps / (steps * sqrt(d))`` (d = 3HW), i.e. about
  the per-pixel size at which ``steps`` steps span the budget (d x_adv / d w <= 1/2);
* every iterate (and the final one) is scored; the result is, per sample, the iterate with the highest
  objective among those within the L2 budget ``eps`` (the clean image if none is), so success is only
  ever reported within the budget. The base class's final projection is then a no-op.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.attacks import ATTACKS
from benchmark.attacks.base import Attack
from benchmark.attacks.objectives import Objective

BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@ATTACKS.register("cw_l2")
class CWL2(Attack):
    """L2-penalized Adam ascent in tanh space, best iterate within the L2 budget; ``c`` > 0 weighs the objective."""

    norms = ("l2",)

    def __init__(
        self,
        eps: float | torch.Tensor = 0.5,
        steps: int = 10,
        alpha: float | None = None,
        random_start: bool = False,
        seed: int = 0,
        norm: str | None = None,
        c: float = 10.0,
    ) -> None:
        super().__init__(eps=eps, steps=steps, alpha=alpha, random_start=random_start, seed=seed, norm=norm)
        if not (isinstance(c, (int, float)) and math.isfinite(c) and c > 0):
            raise ValueError(f"c (objective weight) must be a positive number, got {c!r}")
        self.c = float(c)

    def perturb(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor) -> torch.Tensor:
        if self.alpha is None:
            lr = 5.0 * eps / (self.steps * math.sqrt(x[0].numel()))
        else:
            lr = torch.full_like(eps, self.alpha)
        start = self.start(x, eps)
        w = torch.atanh((start * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        m, v = torch.zeros_like(w), torch.zeros_like(w)
        with torch.no_grad():
            best, best_obj = x.clone(), objective(model, x)
        for t in range(1, self.steps + 2):
            w = w.detach().requires_grad_(t <= self.steps)
            x_adv = (torch.tanh(w) + 1) / 2
            dist = (x_adv - x).flatten(1).pow(2).sum(dim=1)
            obj = objective(model, x_adv)
            with torch.no_grad():
                better = (dist.sqrt() <= eps.flatten()) & (obj > best_obj)
                best[better], best_obj[better] = x_adv[better], obj[better]
            if t > self.steps:
                break
            grad = torch.autograd.grad((dist - self.c * obj).sum(), w)[0]
            with torch.no_grad():
                m.mul_(BETAS[0]).add_(grad, alpha=1 - BETAS[0])
                v.mul_(BETAS[1]).addcmul_(grad, grad, value=1 - BETAS[1])
                m_hat, v_hat = m / (1 - BETAS[0] ** t), v / (1 - BETAS[1] ** t)
                w = w - lr * m_hat / (v_hat.sqrt() + ADAM_EPS)
        return best
