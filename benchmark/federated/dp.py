"""Differential privacy at the institutions (``federated.dp``): the Gaussian mechanism on each shipped update.

Before it seals an update, an institution clips it to L2 norm ``clip`` and adds N(0, (noise_multiplier * clip)^2)
to every entry (DP-FedAvg with fixed clipping, McMahan et al. 2018, applied at each institution because no party
sees the plain sum). The unit of privacy is the institution: the guarantee covers all of its faces at once,
against whoever reads its update alone (the subtraction attack, a colluding key holder). Every institution
ships in every round, so the accountant is the Gaussian mechanism composed ``rounds`` times at sample rate 1:
Opacus's RDP accountant (Mironov 2017) turns it into (epsilon, delta).

The noise comes from the operating system's entropy, never from the run's seed: noise that anyone can regenerate
from params.yaml protects nothing. Runs with DP on therefore differ from run to run. The update's weight (the
institution's image count, :mod:`~benchmark.federated.aggregation`) is shipped as before and is not protected.
"""

from __future__ import annotations

import numpy as np
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent
from opacus.accountants.rdp import RDPAccountant

from benchmark.config import DPConfig


def privatize(update: np.ndarray, cfg: DPConfig, rng: np.random.Generator | None = None) -> np.ndarray:
    """``update`` clipped to L2 norm ``cfg.clip`` plus Gaussian noise of std ``noise_multiplier * clip``;
    returned unchanged when DP is off (``noise_multiplier`` 0). ``rng``: tests only (default: OS entropy)."""
    if cfg.noise_multiplier == 0:
        return update
    rng = rng or np.random.default_rng()
    norm = float(np.linalg.norm(update))
    clipped = update * min(1.0, cfg.clip / norm) if norm > 0 else update
    return clipped + rng.normal(0.0, cfg.noise_multiplier * cfg.clip, size=update.shape)


def epsilon(cfg: DPConfig, rounds: int) -> float:
    """Epsilon at ``cfg.delta`` after ``rounds`` releases of one institution's update."""
    orders = RDPAccountant.DEFAULT_ALPHAS
    rdp = compute_rdp(q=1.0, noise_multiplier=cfg.noise_multiplier, steps=rounds, orders=orders)
    return float(get_privacy_spent(orders=orders, rdp=rdp, delta=cfg.delta)[0])


def epsilon_record(cfg: DPConfig, rounds: int) -> dict | None:
    """federated.json's ``dp_epsilon`` of a mode: None when DP is off, else epsilon for one round, cumulative
    after each round, and the settings that give them."""
    if cfg.noise_multiplier == 0:
        return None
    return {
        "per_round": round(epsilon(cfg, 1), 4),
        "cumulative": [round(epsilon(cfg, t), 4) for t in range(1, rounds + 1)],
        "delta": cfg.delta,
        "noise_multiplier": cfg.noise_multiplier,
        "clip": cfg.clip,
        "unit": "institution",
    }
