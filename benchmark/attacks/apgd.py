"""APGD: Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks" (ICML), the gradient attack of AutoAttack, L-inf.

PGD whose step size needs no tuning: it starts at 2 * eps and is halved, per sample, at checkpoints
w_0 = 0, w_1 = 0.22 N, then steps shrinking by 0.03 N to at least 0.06 N (N = ``steps``), whenever since the
last checkpoint (1) the objective rose on at most ``rho`` = 75% of the steps, or (2) the step was not halved at
the last checkpoint and the best value has not improved since; a halved sample restarts from its best point.
Each update is a projected sign step followed by momentum (alpha = 0.75): x_{k+1} = P(x_k + 0.75 (z_{k+1} - x_k)
+ 0.25 (x_k - x_{k-1})). The attack returns each sample's best point, not its last.

On a verification pair the objectives differ only by a monotone transform of the pair's score: a two-class
cross-entropy or a DLR-style margin of ``cos - threshold`` rises and falls with the cosine. APGD's sign steps, its
progress checks and its choice of the best point are invariant under such a transform, so one run on the
embedding objective (:mod:`benchmark.attacks.objectives`) is both APGD-CE and APGD-DLR for verification.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.attacks import ATTACKS
from benchmark.attacks.base import Attack
from benchmark.attacks.objectives import Objective


def checkpoints(steps: int) -> list[int]:
    """The 1-based steps after which APGD checks its progress: 0.22 N, then intervals shrinking by 0.03 N down to
    0.06 N (each at least one step), up to ``steps``."""
    first, smallest, shrink = max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    out, at, length = [], first, first
    while at <= steps:
        out.append(at)
        length = max(length - shrink, smallest)
        at += length
    return out


@ATTACKS.register("apgd")
class APGD(Attack):
    """Auto-PGD (module docstring); ``rho``: the share of rising steps below which the step is halved."""

    norms = ("linf",)

    def __init__(
        self,
        eps: float | torch.Tensor = 4 / 255,
        steps: int = 10,
        random_start: bool = True,
        seed: int = 0,
        norm: str | None = None,
        rho: float = 0.75,
    ) -> None:
        super().__init__(eps=eps, steps=steps, random_start=random_start, seed=seed, norm=norm)
        if not 0 < rho < 1:
            raise ValueError(f"rho must be in (0, 1), got {rho!r}")
        self.rho = float(rho)

    def perturb(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor) -> torch.Tensor:
        x_adv = self.start(x, eps)
        value, grad = _value_and_gradient(model, x_adv, objective)
        best, x_best, grad_best = value.clone(), x_adv.clone(), grad.clone()
        step = 2 * eps.clone()
        previous, rises, since = x_adv.clone(), torch.zeros_like(value), 0
        best_at_check, halved_at_check = best.clone(), torch.ones_like(value, dtype=torch.bool)
        checks = set(checkpoints(self.steps))
        for k in range(1, self.steps + 1):
            with torch.no_grad():
                z = self.project(x, x_adv + step * grad.sign(), eps)
                momentum = 0.75 if k > 1 else 1.0
                nxt = self.project(x, x_adv + momentum * (z - x_adv) + (1 - momentum) * (x_adv - previous), eps)
                previous, x_adv = x_adv, nxt
            new, grad = _value_and_gradient(model, x_adv, objective)
            with torch.no_grad():
                rises += (new > value).float()
                value = new
                better = value > best
                best, x_best, grad_best = (torch.where(better, value, best), _where(better, x_adv, x_best),
                                           _where(better, grad, grad_best))
                since += 1
                if k in checks:
                    halve = (rises <= self.rho * since) | (~halved_at_check & (best <= best_at_check))
                    step = torch.where(halve.view(-1, 1, 1, 1), step / 2, step)
                    x_adv, grad = _where(halve, x_best, x_adv), _where(halve, grad_best, grad)
                    value = torch.where(halve, best, value)
                    halved_at_check, best_at_check, rises, since = halve, best.clone(), torch.zeros_like(rises), 0
        return x_best


def _value_and_gradient(model: nn.Module, x: torch.Tensor, objective: Objective) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    value = objective(model, x)
    return value.detach(), torch.autograd.grad(value.sum(), x)[0]


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, *([1] * (a.ndim - 1))), a, b)
