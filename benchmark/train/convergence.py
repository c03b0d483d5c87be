"""The plateau rule that decides when a validation curve has converged (patent CN112364828B, claim 2).

The patent ends training when both the supervised loss (LossA) and the unsupervised loss (LossB) have
converged, without saying how convergence is judged. The rule here, on a held-out (validation) curve:
a curve has converged at epoch ``t`` (1-based) when, for ``patience`` epochs in a row (``t - patience + 1``
to ``t``), no value improved on the best value seen before it by more than ``min_delta``. It is the
early-stopping rule of Keras / PyTorch Lightning, in two modes:

* ``"min"`` (a loss): the threshold is relative to the best, so it reads the same for a cross-entropy near 5
  and a feature loss near 0.1 (improved when ``value < best * (1 - min_delta)``);
* ``"max"`` (an accuracy in [0, 1], such as the validation pairs' verification accuracy): the threshold is
  absolute, in accuracy units (improved when ``value > best + min_delta``).

As in Keras, ``best`` moves only on an improvement that counts. Pure functions of the curve, no state.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

MODES = ("min", "max")


def _check(patience: int, min_delta: float, mode: str) -> None:
    if patience < 1:
        raise ValueError(f"patience must be >= 1 epoch, got {patience}")
    if not 0.0 <= min_delta < 1.0:
        raise ValueError(f"min_delta must be an improvement in [0, 1), got {min_delta}")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} not allowed; choose from {MODES}")


def converged_at(values: Sequence[float], patience: int, min_delta: float, mode: str = "min") -> int | None:
    """The first epoch (1-based) at which the curve ``values`` has plateaued, or None if it has not.

    values:    one held-out value per epoch, epoch 1 first (NaN never improves).
    patience:  epochs in a row without an improvement above ``min_delta``.
    min_delta: improvement that counts: relative for mode "min" (0.01 = the loss must fall below 99% of its
               best), absolute for mode "max" (0.01 = the accuracy must rise more than 0.01 above its best).
    mode:      "min" for a loss (lower is better), "max" for an accuracy (higher is better).
    """
    _check(patience, min_delta, mode)
    best = float("inf") if mode == "min" else float("-inf")
    stale = 0
    for epoch, value in enumerate(values, start=1):
        improved = (value < best * (1.0 - min_delta)) if mode == "min" else (value > best + min_delta)
        if improved:
            best = value
            stale = 0
        else:
            stale += 1
            if stale >= patience:
                return epoch
    return None


def all_converged(
    curves: dict[str, Sequence[float]], patience: int, min_delta: float, maximize: Collection[str] = ()
) -> dict[str, int | None]:
    """``converged_at`` for each named curve (e.g. {"val_accuracy": [...], "loss_b": [...]}); the curves named
    in ``maximize`` are judged in mode "max", the others in mode "min"."""
    return {
        name: converged_at(values, patience, min_delta, "max" if name in maximize else "min")
        for name, values in curves.items()
    }
