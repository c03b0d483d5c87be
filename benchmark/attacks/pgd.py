"""PGD: Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks".

Projected gradient ascent on the objective from a random start in the ball: L-inf steps
``x + alpha * sign(grad)`` (``pgd_linf``), L2 steps ``x + alpha * grad / ||grad||_2`` (``pgd_l2``), each
followed by projection onto the eps ball and clamping to [0, 1]. Default alpha = 2.5 * eps / steps.
With ``random_start=False`` the L-inf iterates equal torchattacks' ``PGD`` (tests/test_attacks_reference.py).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.attacks import ATTACKS
from benchmark.attacks.base import Attack
from benchmark.attacks.objectives import Objective


class PGD(Attack):
    """Iterative projected gradient ascent; see the module docstring."""

    def perturb(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor) -> torch.Tensor:
        alpha = self.step_size(eps)
        x_adv = self.start(x, eps)
        for _ in range(self.steps):
            grad = self.gradient(model, x_adv, objective)
            with torch.no_grad():
                if self.norm == "linf":
                    step = grad.sign_()
                else:
                    step = grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1).clamp_min(1e-12)
                x_adv = self.project(x, x_adv + alpha * step, eps)
        return x_adv


@ATTACKS.register("pgd_linf")
class PGDLinf(PGD):
    """PGD in the L-inf ball (eps = max abs change per pixel)."""

    norms = ("linf",)


@ATTACKS.register("pgd_l2")
class PGDL2(PGD):
    """PGD in the L2 ball (eps = Euclidean norm of the whole (3, H, W) perturbation)."""

    norms = ("l2",)
