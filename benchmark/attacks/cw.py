"""CW-L2: Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural Networks" (IEEE S&P),
adapted to the embedding objectives and to a fixed L2 budget.

The original minimizes ``||delta||_2^2 + c * f(x + delta)`` over ``w`` in tanh space
(``x + delta = (tanh(w) + 1) / 2``, so every iterate lies in [0, 1] without clipping), with Adam, where
``f`` is a logit margin and ``c`` is found by binary search. Here, exactly:

* the margin ``f`` is replaced by the negated attack objective, a margin whose sign says success (e.g. the
  verification margin ``+-(cos - threshold)`` of :func:`benchmark.attacks.objectives.verification`): per sample
  the loss is ``||x_adv - x||_2^2 - c * objective(model, x_adv)``, without C&W's clip of f at -kappa, so the
  attack keeps raising the objective past the boundary, as every attack of the library does;
* ``c`` is found per sample by C&W's binary search: ``search_steps`` rounds, each a fresh run of ``steps`` Adam
  steps from the clean image; after a round that succeeded within the budget (objective > 0) the upper bound
  becomes c and c the midpoint, after a failed one the lower bound becomes c and c grows tenfold while no
  upper bound is known (the midpoint after). ``c`` is the first round's value (C&W start at 1e-3 with
  9 rounds of up to 10,000 steps; here 1 and a few rounds of ``steps``, to fit the CPU budget);
* ``w`` starts at ``atanh(2x - 1)`` (the clean image, pixels squeezed into (0, 1) by 1e-6) and takes
  ``steps`` Adam steps (Kingma & Ba 2015; beta 0.9 / 0.999), written out here so each sample has its own
  learning rate: ``alpha`` in tanh units, default ``5 * eps / (steps * sqrt(d))`` (d = 3HW), i.e. about
  the per-pixel size at which ``steps`` steps span the budget (d x_adv / d w <= 1/2);
* every iterate of every round is scored; the result is, per sample, the iterate with the highest
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
        c: float = 1.0,
        search_steps: int = 4,
    ) -> None:
        super().__init__(eps=eps, steps=steps, alpha=alpha, random_start=random_start, seed=seed, norm=norm)
        if not (isinstance(c, (int, float)) and math.isfinite(c) and c > 0):
            raise ValueError(f"c (the first round's objective weight) must be a positive number, got {c!r}")
        if isinstance(search_steps, bool) or not isinstance(search_steps, int) or search_steps < 1:
            raise ValueError(f"search_steps (rounds of the binary search over c) must be an integer >= 1, got {search_steps!r}")
        self.c, self.search_steps = float(c), search_steps

    def perturb(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor) -> torch.Tensor:
        if self.alpha is None:
            lr = 5.0 * eps / (self.steps * math.sqrt(x[0].numel()))
        else:
            lr = torch.full_like(eps, self.alpha)
        w = torch.atanh((self.start(x, eps) * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        c = torch.full((len(x),), self.c, device=x.device)
        lo, hi = torch.zeros_like(c), torch.full_like(c, math.inf)
        with torch.no_grad():
            best, best_obj = x.clone(), objective(model, x)
        for _ in range(self.search_steps):
            success = self._round(model, x, objective, eps, w, c, lr, best, best_obj)
            hi, lo = torch.where(success, c, hi), torch.where(success, lo, c)
            c = torch.where(torch.isfinite(hi), (lo + hi) / 2, c * 10)
        return best

    def _round(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor, w: torch.Tensor,
               c: torch.Tensor, lr: torch.Tensor, best: torch.Tensor, best_obj: torch.Tensor) -> torch.Tensor:
        """``steps`` Adam steps from ``w`` at weights ``c`` (N,); updates ``best``/``best_obj`` in place with better
        iterates within the budget; returns (N,) whether one of this round's iterates succeeded within it."""
        m, v = torch.zeros_like(w), torch.zeros_like(w)
        success = torch.zeros_like(best_obj, dtype=torch.bool)
        for t in range(1, self.steps + 2):
            w = w.detach().requires_grad_(t <= self.steps)
            x_adv = (torch.tanh(w) + 1) / 2
            dist = (x_adv - x).flatten(1).pow(2).sum(dim=1)
            obj = objective(model, x_adv)
            with torch.no_grad():
                within = dist.sqrt() <= eps.flatten()
                success |= within & (obj > 0)
                better = within & (obj > best_obj)
                best[better], best_obj[better] = x_adv[better], obj[better]
            if t > self.steps:
                return success
            grad = torch.autograd.grad((dist - c * obj).sum(), w)[0]
            with torch.no_grad():
                m.mul_(BETAS[0]).add_(grad, alpha=1 - BETAS[0])
                v.mul_(BETAS[1]).addcmul_(grad, grad, value=1 - BETAS[1])
                m_hat, v_hat = m / (1 - BETAS[0] ** t), v / (1 - BETAS[1] ** t)
                w = w - lr * m_hat / (v_hat.sqrt() + ADAM_EPS)
        return success
