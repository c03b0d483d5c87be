"""A model's operating thresholds, chosen on validation pairs (never on test pairs).

The threshold a model is deployed with (robustness attacks, open-set identification, the CLI) is picked on
verification pairs of the training source's validation identities, which no test pair shares: the
accuracy-maximizing threshold, and the threshold at each false accept rate in ``fars``. Test pairs only
measure. Pure functions of (scores, labels).
"""

from __future__ import annotations

import numpy as np

from benchmark.evaluation.verification import best_threshold, threshold_at_far

FARS = (1e-2, 1e-3)


def far_key(far: float) -> str:
    """``1e-3`` -> ``"1e-3"``, the key a FAR threshold is stored under."""
    return f"{far:.0e}".replace("e-0", "e-")


def calibrate(scores: np.ndarray, is_same: np.ndarray, fars: tuple[float, ...] = FARS) -> dict:
    """``{"threshold", "accuracy", "threshold_at_far": {"1e-2": t, ...}, "pairs", "genuine", "impostor"}``.

    scores: (P,) cosine scores of validation pairs; is_same: (P,) 1 genuine, 0 impostor.
    ``threshold`` maximizes accuracy on these pairs (``accuracy``); ``threshold_at_far[k]`` is the lowest
    threshold whose FAR on the validation impostors is at most that FAR (+inf when none is).
    """
    scores, is_same = np.asarray(scores, np.float64), np.asarray(is_same).astype(np.int64)
    threshold, accuracy = best_threshold(scores, is_same)
    genuine, impostor = scores[is_same == 1], scores[is_same == 0]
    return {
        "threshold": threshold,
        "accuracy": accuracy,
        "threshold_at_far": {far_key(f): threshold_at_far(genuine, impostor, f) for f in fars},
        "pairs": int(len(scores)),
        "genuine": int(len(genuine)),
        "impostor": int(len(impostor)),
    }


def threshold_for_far(validation: dict, far: float, mode: str = "plain") -> float:
    """The validation threshold at ``far`` from the scores a checkpoint keeps (``validation[mode]["scores"]``
    and ``validation["is_same"]``, mode ``plain`` or ``flip``), for any FAR, not only those calibrated in advance."""
    scores = np.asarray(validation[mode]["scores"], np.float64)
    is_same = np.asarray(validation["is_same"])
    return threshold_at_far(scores[is_same == 1], scores[is_same == 0], far)
