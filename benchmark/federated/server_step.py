"""The federation's server optimizer, applied where the global model is: at every institution.

FedAvg moves the global model by the weighted mean of the institutions' updates. FedAvgM (Hsu et al. 2019,
"Measuring the Effects of Non-Identical Data Distribution for Federated Visual Classification") and FedOpt
(Reddi et al. 2021, "Adaptive Federated Optimization") treat that mean as a pseudo-gradient and step with a
server learning rate and momentum:

    m_r = beta * m_(r-1) + mean_r            (m_0 = 0)
    w_r = w_(r-1) + server_lr * m_r

(server_lr 1 and beta 0 is FedAvg.) In the encrypted modes the server never sees the mean, so it cannot hold
this state: every institution applies the step to the sum it decrypts. Each m_r is a function of the sums alone,
so every institution that applied the same sums holds the same model and momentum bit for bit, and the hash
chain of :mod:`benchmark.federated.sync` (which names the sums applied) still names the model; an institution
that replays missed sums in order, or every sum from the preset model after a restart, rebuilds both.
Adaptive variants (FedAdam) would need the same per-coordinate state; they are not offered.
"""

from __future__ import annotations

import numpy as np


def server_step(
    weights: np.ndarray, mean_update: np.ndarray, momentum: np.ndarray | None, server_lr: float, beta: float,
    statistics: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One round's step: the new global weights (P,) and the new momentum (P,), or None with ``beta`` 0 (a server
    learning rate alone keeps no state). ``momentum`` None is m_0 = 0. ``statistics`` (P,) bool marks the entries
    that are BatchNorm running statistics, not trained weights: they take the plain mean (an extrapolated running
    variance could turn negative), and their momentum stays 0."""
    if not weights.shape == mean_update.shape == statistics.shape or (momentum is not None and momentum.shape != weights.shape):
        raise ValueError(f"weights {weights.shape}, mean update {mean_update.shape}, statistics mask {statistics.shape} "
                         f"and momentum {None if momentum is None else momentum.shape} must have one shape")
    step = np.where(statistics, 0.0, mean_update if not beta or momentum is None else beta * momentum + mean_update)
    return weights + server_lr * step + np.where(statistics, mean_update, 0.0), (step if beta else None)
