"""The plateau rule that decides when a loss has converged (patent CN112364828B, claim 2).

The patent ends training when both the supervised loss (LossA) and the unsupervised loss (LossB) have
converged, without saying how convergence is judged. The rule here, on a held-out (validation) curve:
a loss has converged at epoch ``t`` (1-based) when, for ``patience`` epochs in a row (``t - patience + 1``
to ``t``), no value improved on the best value seen before it by more than ``min_delta`` relative to that
best. It is the early-stopping rule of Keras / PyTorch Lightning with a relative threshold, so it reads
the same for a cross-entropy near 5 and a feature loss near 0.1. Pure functions of the curve, no state.
"""

from __future__ import annotations

from collections.abc import Sequence


def _check(patience: int, min_delta: float) -> None:
    if patience < 1:
        raise ValueError(f"patience must be >= 1 epoch, got {patience}")
    if not 0.0 <= min_delta < 1.0:
        raise ValueError(f"min_delta must be a relative improvement in [0, 1), got {min_delta}")


def converged_at(values: Sequence[float], patience: int, min_delta: float) -> int | None:
    """The first epoch (1-based) at which the curve ``values`` has plateaued, or None if it has not.

    values:    one held-out loss per epoch, epoch 1 first (non-negative losses; NaN never improves).
    patience:  epochs in a row without a relative improvement above ``min_delta``.
    min_delta: relative improvement that counts, e.g. 0.01 = the loss must fall below 99% of its best.
    """
    _check(patience, min_delta)
    best = float("inf")
    stale = 0
    for epoch, value in enumerate(values, start=1):
        if value < best * (1.0 - min_delta):
            best = value
            stale = 0
        else:
            stale += 1
            if stale >= patience:
                return epoch
    return None


def all_converged(curves: dict[str, Sequence[float]], patience: int, min_delta: float) -> dict[str, int | None]:
    """``converged_at`` for each named curve (e.g. {"loss_a": [...], "loss_b": [...]})."""
    return {name: converged_at(values, patience, min_delta) for name, values in curves.items()}
