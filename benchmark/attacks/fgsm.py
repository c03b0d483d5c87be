"""FGSM: Goodfellow, Shlens & Szegedy 2015, "Explaining and Harnessing Adversarial Examples".

One signed-gradient step ``x + eps * sign(grad)`` (L-inf), or the L2 "fast gradient method"
``x + eps * grad / ||grad||_2`` (Miyato et al. 2016), then clamping to [0, 1]. With ``random_start``
it is the FGSM-RS of Wong, Rice & Kolter 2020 ("Fast is better than free"): a uniform start in the ball,
one step of ``alpha`` (default 1.25 * eps), projection.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.attacks import ATTACKS
from benchmark.attacks.base import Attack
from benchmark.attacks.objectives import Objective


@ATTACKS.register("fgsm")
class FGSM(Attack):
    """Single-step attack; eps, alpha in [0, 1] pixel units (L-inf, or L2 with ``norm="l2"``)."""

    def __init__(
        self,
        eps: float | torch.Tensor = 4 / 255,
        alpha: float | None = None,
        random_start: bool = False,
        seed: int = 0,
        norm: str | None = None,
    ) -> None:
        super().__init__(eps=eps, steps=1, alpha=alpha, random_start=random_start, seed=seed, norm=norm)

    def default_alpha(self, eps: torch.Tensor) -> torch.Tensor:
        """eps from the clean image (Goodfellow et al.); 1.25 * eps from a random start (Wong et al.)."""
        return 1.25 * eps if self.random_start else eps

    def perturb(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor) -> torch.Tensor:
        x_adv = self.start(x, eps)
        grad = self.gradient(model, x_adv, objective)
        with torch.no_grad():
            if self.norm == "linf":
                return x_adv + self.step_size(eps) * grad.sign()
            unit = grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1).clamp_min(1e-12)
            return x_adv + self.step_size(eps) * unit
