"""The base class every attack derives from: the shared concerns, so each attack file holds only its update rule.

:class:`Attack` owns (DESIGN.md, convention 4; the role of torchattacks' ``Attack``):

* argument checks: ``eps`` >= 0 (a float, or a (N,) tensor of per-sample budgets, as the minimal-
  perturbation search uses), ``steps`` >= 1, ``alpha`` > 0, a supported ``norm``; and input checks
  (float (N, 3, H, W) in [0, 1], an objective returning (N,) values);
* the threat model: projection onto the L-inf or L2 ball of radius ``eps`` around the clean image, then
  clamping to [0, 1] (clamping after the projection never leaves the ball: each coordinate moves toward
  the clean image, which is itself in [0, 1]);
* the random start (uniform in the L-inf ball; for L2 a uniformly random direction scaled by U(0, 1) * eps,
  as torchattacks' ``PGDL2``), drawn from a generator seeded with ``seed`` so attacks are deterministic;
* running the model in eval mode with its parameters' ``requires_grad`` off (only the input gradient is
  needed) and restoring both afterwards, even on error.

Budgets are in [0, 1] pixel units: ``eps = 4/255`` is four grey levels per pixel in L-inf; an L2 budget
is the Euclidean norm of the whole (3, H, W) perturbation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.attacks.objectives import Objective

NORMS = ("linf", "l2")


class Attack:
    """Maximize ``objective(model, x_adv)`` per sample within an ``eps`` ball around ``x``, inside [0, 1].

    eps:          budget, float or (N,) tensor, >= 0; L-inf (max abs pixel change) or L2 (norm of the
                  whole perturbation) per ``norm``, in [0, 1] pixel units.
    steps:        gradient steps (>= 1).
    alpha:        step size in the same units as eps; ``None`` takes the attack's default
                  (:meth:`default_alpha`), scaled per sample when eps is a tensor.
    random_start: start from a random point in the ball instead of the clean image.
    seed:         seeds the random start (a private generator; the global RNG is untouched).
    norm:         one of the attack's ``norms``.

    Subclasses set ``norms`` (supported norms, the first is the default) and implement
    :meth:`perturb`; ``__call__`` does the checks, the mode handling and the final projection.
    """

    norms: tuple[str, ...] = NORMS

    def __init__(
        self,
        eps: float | torch.Tensor = 4 / 255,
        steps: int = 10,
        alpha: float | None = None,
        random_start: bool = True,
        seed: int = 0,
        norm: str | None = None,
    ) -> None:
        norm = self.norms[0] if norm is None else norm
        if norm not in self.norms:
            raise ValueError(
                f"unknown norm '{norm}' for attack {type(self).__name__}; allowed: {', '.join(self.norms)}"
            )
        self.norm = norm
        self.eps = _check_eps(eps)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if alpha is not None and not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha (step size) must be a positive number or None for the default, got {alpha!r}")
        self.steps = steps
        self.alpha = None if alpha is None else float(alpha)
        self.random_start = bool(random_start)
        self.seed = int(seed)

    def default_alpha(self, eps: torch.Tensor) -> torch.Tensor:
        """Step size when ``alpha`` is None: 2.5 * eps / steps (Madry et al. 2018)."""
        return 2.5 * eps / self.steps

    def __call__(self, model: nn.Module, x: torch.Tensor, objective: Objective) -> torch.Tensor:
        """x: float (N, 3, H, W) in [0, 1] -> adversarial images, detached, same shape, in the ball and [0, 1]."""
        _check_images(x)
        eps = self._eps_for(x)
        x = x.detach()
        was_training = model.training
        frozen = [p for p in model.parameters() if p.requires_grad]
        model.eval()
        try:
            for p in frozen:  # no weight gradients: the forward keeps no tensors for them
                p.requires_grad_(False)
            with torch.enable_grad():
                x_adv = self.perturb(model, x, _checked(objective, len(x)), eps)
        finally:
            for p in frozen:
                p.requires_grad_(True)
            model.train(was_training)
        return self.project(x, x_adv, eps).detach()

    def perturb(self, model: nn.Module, x: torch.Tensor, objective: Objective, eps: torch.Tensor) -> torch.Tensor:
        """The attack's own update rule; eps is (N, 1, 1, 1). Returns images to be projected."""
        raise NotImplementedError

    def step_size(self, eps: torch.Tensor) -> torch.Tensor:
        """(N, 1, 1, 1) step sizes: ``alpha`` if given, else :meth:`default_alpha` of eps."""
        return torch.full_like(eps, self.alpha) if self.alpha is not None else self.default_alpha(eps)

    @staticmethod
    def gradient(model: nn.Module, x_adv: torch.Tensor, objective: Objective) -> torch.Tensor:
        """d objective.sum() / d x_adv, (N, 3, H, W); only the input gradient is computed (no weight grads)."""
        x_adv = x_adv.detach().requires_grad_(True)
        return torch.autograd.grad(objective(model, x_adv).sum(), x_adv)[0]

    def project(self, x: torch.Tensor, x_adv: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Project ``x_adv`` onto the ``norm`` ball of radius eps (N, 1, 1, 1) around ``x``, then clamp to [0, 1]."""
        with torch.no_grad():
            delta = x_adv - x
            if self.norm == "linf":
                delta = torch.clamp(delta, min=-eps, max=eps)
            else:
                norms = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                delta = delta * torch.clamp(eps / norms.clamp_min(1e-12), max=1.0)
            return torch.clamp(x + delta, min=0, max=1)

    def start(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The first iterate: ``x`` itself, or a seeded random point of the ball clamped to [0, 1]."""
        if not self.random_start:
            return x.clone()
        gen = torch.Generator(device=x.device).manual_seed(self.seed)
        if self.norm == "linf":
            noise = (torch.rand(x.shape, generator=gen, device=x.device) * 2 - 1) * eps
        else:
            direction = torch.randn(x.shape, generator=gen, device=x.device)
            direction = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1).clamp_min(1e-12)
            radius = torch.rand((len(x), 1, 1, 1), generator=gen, device=x.device)
            noise = direction * radius * eps
        return torch.clamp(x + noise, min=0, max=1)

    def _eps_for(self, x: torch.Tensor) -> torch.Tensor:
        eps = self.eps.to(device=x.device, dtype=x.dtype)
        if eps.ndim == 0:
            return eps.expand(len(x)).reshape(-1, 1, 1, 1).clone()
        if eps.shape != (len(x),):
            raise ValueError(f"per-sample eps must have shape (N,) = ({len(x)},), got {tuple(eps.shape)}")
        return eps.reshape(-1, 1, 1, 1)


def _check_eps(eps: float | torch.Tensor) -> torch.Tensor:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, torch.Tensor)):
        raise ValueError(f"eps must be a number or a (N,) tensor of budgets >= 0, got {type(eps).__name__}")
    t = torch.as_tensor(eps, dtype=torch.float32).detach()
    if t.ndim > 1:
        raise ValueError(f"eps must be a number or a (N,) tensor, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"eps must be finite and >= 0 (a budget in [0, 1] pixel units), got {eps!r}")
    return t


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor (N, C, H, W), got {getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must be images in [0, 1], got values in [{x.min().item():.3g}, {x.max().item():.3g}]")


def _checked(objective: Objective, n: int) -> Objective:
    def wrapped(model: nn.Module, x_adv: torch.Tensor) -> torch.Tensor:
        value = objective(model, x_adv)
        if value.shape != (n,):
            raise ValueError(f"objective must return one value per sample, shape ({n},), got {tuple(value.shape)}")
        return value

    return wrapped
