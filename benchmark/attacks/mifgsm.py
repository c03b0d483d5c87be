"""MI-FGSM: Dong et al. 2018, "Boosting Adversarial Attacks with Momentum" (CVPR), L-inf.

``g_{t+1} = mu * g_t + grad / ||grad||_1`` (per sample), ``x_{t+1} = proj(x_t + alpha * sign(g_{t+1}))``,
with alpha = eps / steps and mu = 1.0 as in the paper, starting from the clean image by default. The
accumulated momentum stabilizes the update direction, which is why its examples transfer better.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.attacks import ATTACKS
from benchmark.attacks.base import Attack
from benchmark.attacks.objectives import Objective


@ATTACKS.register("mifgsm")
class MIFGSM(Attack):
    """Momentum iterative FGSM; ``decay`` is mu (>= 0)."""

    norms = ("linf",)

    def __init__(
        self,
        eps: float | torch.Tensor = 4 / 255,
        steps: int = 10,
        alpha: float | None = None,
        random_start: bool = False,
        seed: int = 0,
        norm: str | None = None,
        decay: float = 1.0,
    ) -> None:
        super().__init__(eps=eps, steps=steps, alpha=alpha, random_start=random_start, seed=seed, norm=norm)
        if not decay >= 0:
            raise ValueError(f"decay (momentum mu) must be >= 0, got {decay!r}")
        self.decay = float(decay)

    def default_alpha(self, eps: torch.Tensor) -> torch.Tensor:
        """eps / steps (Dong et al. 2018): T steps of alpha reach the budget exactly."""
        return eps / self.steps

    def perturb(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor) -> torch.Tensor:
        alpha = self.step_size(eps)
        x_adv = self.start(x, eps)
        momentum = torch.zeros_like(x)
        for _ in range(self.steps):
            grad = self.gradient(model, x_adv, objective)
            with torch.no_grad():
                l1 = grad.abs().flatten(1).mean(dim=1).view(-1, 1, 1, 1).clamp_min(1e-12)
                momentum.mul_(self.decay).add_(grad / l1)
                x_adv = self.project(x, x_adv + alpha * momentum.sign(), eps)
        return x_adv
