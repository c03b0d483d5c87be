"""Square Attack: Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box adversarial attack via
random search" (ECCV), L-inf; the score-based attack of AutoAttack.

It never reads a gradient, so a model whose gradients mislead gradient attacks (gradient masking) does not
mislead it. Start: vertical stripes, each column of each channel at +eps or -eps. Each of ``steps`` queries then
redraws one square window (the same place for the whole batch, as the reference implementation) of every image
to +-eps per channel, and keeps the change for the images whose objective rose. The window's area is a share p
of the image that halves on the paper's schedule (p_init at first, then p_init / 2 after 10 of 10,000 queries,
/ 4 after 50, ..., rescaled to ``steps``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.attacks import ATTACKS
from benchmark.attacks.base import Attack
from benchmark.attacks.objectives import Objective

SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # query counts (of 10,000) after which p halves


def window_share(query: int, queries: int, p_init: float) -> float:
    """The share of the image the ``query``-th window covers: p_init halved once per mark of :data:`SCHEDULE` passed,
    the marks rescaled from 10,000 queries to ``queries``."""
    at = int(query / queries * 10_000)
    return p_init / 2 ** sum(at > mark for mark in SCHEDULE)


@ATTACKS.register("square")
class Square(Attack):
    """Square Attack (module docstring); ``steps`` is the number of queries after the start, ``p_init`` the first
    window's share of the image."""

    norms = ("linf",)

    def __init__(
        self,
        eps: float | torch.Tensor = 4 / 255,
        steps: int = 100,
        seed: int = 0,
        norm: str | None = None,
        p_init: float = 0.8,
    ) -> None:
        super().__init__(eps=eps, steps=steps, random_start=True, seed=seed, norm=norm)
        if not 0 < p_init <= 1:
            raise ValueError(f"p_init must be in (0, 1], got {p_init!r}")
        self.p_init = float(p_init)

    def perturb(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        gen = torch.Generator(device=x.device).manual_seed(self.seed)

        def signs(*shape: int) -> torch.Tensor:
            return torch.randint(0, 2, shape, generator=gen, device=x.device).to(x.dtype) * 2 - 1

        with torch.no_grad():
            x_best = torch.clamp(x + eps * signs(n, c, 1, w), 0, 1)
            best = objective(model, x_best)
            for query in range(self.steps):
                side = min(max(round(math.sqrt(window_share(query, self.steps, self.p_init) * h * w)), 1), h, w)
                top, left = (int(torch.randint(0, size - side + 1, (1,), generator=gen, device=x.device))
                             for size in (h, w))
                candidate = x_best.clone()
                window = candidate[:, :, top:top + side, left:left + side]
                window.copy_(torch.clamp(x[:, :, top:top + side, left:left + side] + eps * signs(n, c, 1, 1), 0, 1))
                value = objective(model, candidate)
                better = value > best
                best = torch.where(better, value, best)
                x_best = torch.where(better.view(-1, 1, 1, 1), candidate, x_best)
        return x_best
