"""White-box attacks on face recognizers: one registry, one base class, one attack a file.

Entries of :data:`ATTACKS` (``create_attack(name, eps=..., steps=..., ...)``):

* ``fgsm``: Goodfellow et al. 2015, "Explaining and Harnessing Adversarial Examples" (L-inf, one step);
* ``pgd_linf`` / ``pgd_l2``: Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial
  Attacks" (projected gradient ascent with a random start, L-inf or L2 ball);
* ``mifgsm``: Dong et al. 2018, "Boosting Adversarial Attacks with Momentum" (L-inf);
* ``cw_l2``: Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural Networks", adapted to
  the embedding objectives (see :mod:`benchmark.attacks.cw`);
* ``apgd``: Croce & Hein 2020, Auto-PGD, AutoAttack's gradient attack (L-inf, self-tuning step size);
* ``square``: Andriushchenko et al. 2020, Square Attack, AutoAttack's score-based attack (L-inf, no gradient).

Every attack maximizes a per-sample objective (:mod:`benchmark.attacks.objectives`): dodging and
impersonation on embeddings for verification, cross-entropy on identity logits for classification.
Importing this package does not import the attack modules; the registry loads them on first use.
"""

from __future__ import annotations

import inspect
from typing import Any

from benchmark.models.registry import Registry

ATTACKS = Registry(
    "attack",
    modules=("benchmark.attacks.fgsm", "benchmark.attacks.pgd", "benchmark.attacks.mifgsm", "benchmark.attacks.cw",
             "benchmark.attacks.apgd", "benchmark.attacks.square"),
)


def create_attack(name: str, **kwargs: Any) -> Any:
    """Build attack ``name`` (see :data:`ATTACKS`) with keyword arguments ``kwargs``.

    An unknown name, or an argument the attack does not take, raises ValueError listing what is allowed.
    """
    try:
        factory = ATTACKS.get(name)
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    allowed = [p for p in inspect.signature(factory).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"attack '{name}' takes no argument(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return factory(**kwargs)
