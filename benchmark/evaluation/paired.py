"""Paired comparison of two recognizers on the same verification pairs: pure functions.

Two models decided the same pairs; each pair is correct or not for each (:func:`~benchmark.evaluation.
verification.kfold_correct`). :func:`paired_difference` gives the accuracy difference with a 95% paired bootstrap
interval (pairs resampled with replacement, both models' outcomes together) and McNemar's exact test on the
discordant pairs (scipy's binomial test); :func:`verdict` turns the interval into a claim against a margin. The
bootstrap resamples pairs, not identities: pairs sharing an identity are not independent, so the interval is
somewhat narrow; the fold standard deviation beside it shows the spread between disjoint identity groups.

:func:`paired_difference_over_seeds` compares two training recipes run with several seeds on the same pairs: each
pair's difference is averaged over the seeds, the interval is the paired bootstrap over pairs of those averages, and
the p-value a sign-flip permutation test over pairs (under no difference, a and b are exchangeable within a pair).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

RESAMPLES = 2000
CHUNK = 250  # bootstrap resamples drawn at a time (bounds the index array's memory)


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
                      confidence: float = 0.95) -> dict:
    """Accuracy of a minus accuracy of b on the same pairs.

    correct_a, correct_b: bool (P,), each pair's outcome for a and for b (same pairs, same order).
    Returns {"difference", "ci": [lo, hi] (percentile bootstrap over pairs), "p_value" (two-sided McNemar exact
    test; 1.0 without discordant pairs), "pairs", "a_only", "b_only" (pairs only a / only b got right)}.
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"correct_a and correct_b must be non-empty 1-D arrays of one shape, got {a.shape} and {b.shape}")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"resamples must be >= 1 and confidence in (0, 1), got {resamples} and {confidence}")
    d = a.astype(np.float64) - b.astype(np.float64)
    rng = np.random.default_rng(seed)
    means = np.concatenate([d[rng.integers(0, len(d), (min(CHUNK, resamples - k), len(d)))].mean(axis=1)
                            for k in range(0, resamples, CHUNK)])
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = binomtest(min(a_only, b_only), a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"difference": float(d.mean()), "ci": [float(lo), float(hi)], "p_value": float(p), "pairs": int(len(d)),
            "a_only": a_only, "b_only": b_only}


def verdict(ci: list[float], margin: float = 0.0) -> str:
    """``"above"`` when the whole interval lies above ``margin``, ``"below"`` when it lies below, else
    ``"not shown"`` (the interval straddles it)."""
    lo, hi = ci
    if lo > margin:
        return "above"
    if hi < margin:
        return "below"
    return "not shown"


def paired_difference_over_seeds(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = RESAMPLES,
                                 seed: int = 0, confidence: float = 0.95) -> dict:
    """Accuracy of a minus accuracy of b over seeds, on the same pairs (module docstring).

    correct_a, correct_b: bool (S, P): per training seed (rows, the same seeds for both), each pair's outcome.
    Returns {"difference" (mean over seeds and pairs), "ci": [lo, hi] (percentile bootstrap over pairs of the
    seed-averaged differences), "p_value" (two-sided sign-flip permutation test over pairs, ``resamples`` random
    flips, the observed one counted), "pairs", "seeds"}.
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"correct_a and correct_b must be non-empty (seeds, pairs) arrays of one shape, got {a.shape} "
                         f"and {b.shape}")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"resamples must be >= 1 and confidence in (0, 1), got {resamples} and {confidence}")
    d = (a.astype(np.float64) - b.astype(np.float64)).mean(axis=0)
    rng = np.random.default_rng(seed)
    means, flipped = [], []
    for k in range(0, resamples, CHUNK):
        size = (min(CHUNK, resamples - k), len(d))
        means.append(d[rng.integers(0, len(d), size)].mean(axis=1))
        flipped.append((d * rng.choice((-1.0, 1.0), size)).mean(axis=1))
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(np.concatenate(means), [tail, 100 - tail])
    extreme = int(np.sum(np.abs(np.concatenate(flipped)) >= abs(d.mean()) - 1e-12))
    return {"difference": float(d.mean()), "ci": [float(lo), float(hi)], "p_value": (extreme + 1) / (resamples + 1),
            "pairs": int(len(d)), "seeds": int(a.shape[0])}
