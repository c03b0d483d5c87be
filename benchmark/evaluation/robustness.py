"""Robustness metrics for face verification under attack: pure functions of scores, labels and budgets.

Conventions (as :mod:`benchmark.evaluation.verification`): ``before`` / ``after`` are (P,) cosine
similarities of each pair before and after the attack, ``is_same`` (P,) is True for genuine pairs, and a
pair is accepted (predicted genuine) when ``score >= threshold``. A pair is *correct* when it is accepted
and genuine, or rejected and impostor. Budgets are floats in the attack's units ([0, 1] pixel units for
L-inf, the perturbation's Euclidean norm for L2).

Definitions (the RobFR benchmark, Yang et al. 2020, "RobFR: Benchmarking Adversarial Robustness on Face
Recognition"):

* **dodging success rate**: among genuine pairs correctly accepted before the attack (the denominator),
  the fraction whose score falls below the threshold after it;
* **impersonation success rate**: among impostor pairs correctly rejected before the attack (the
  denominator), the fraction whose score reaches the threshold after it;
  either is NaN when its denominator is empty;
* **robust verification accuracy**: the fraction of all attacked pairs (genuine and impostor, including
  those already wrong before the attack, which stay wrong) classified correctly after the attack;
* **minimal successful perturbation** of a pair: the smallest budget at which the attack broke it (an
  upper bound found by a coarse sweep over the budgets, then bisection); +inf for a pair never broken
  within the largest budget. Its **median** is taken over the pairs correct before the attack, +inf
  values included as the largest values (``numpy.median``): the median is +inf when at least half of
  the pairs (with an even count: the upper middle one) resisted the largest budget.
"""

from __future__ import annotations

import numpy as np

from benchmark.evaluation.intervals import wilson


def _check(*arrays: np.ndarray) -> None:
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"scores and is_same must be 1-D arrays of one length, got shapes {sorted(shapes)}")


def correct(scores: np.ndarray, is_same: np.ndarray, threshold: float) -> np.ndarray:
    """(P,) bool: accepted genuine pairs and rejected impostor pairs."""
    _check(scores, is_same)
    return (np.asarray(scores) >= threshold) == np.asarray(is_same, dtype=bool)


def attack_success_counts(before: np.ndarray, after: np.ndarray, is_same: np.ndarray, threshold: float) -> dict:
    """``{"dodging": (broken, attacked), "impersonation": (broken, attacked)}``: each success rate's numerator and
    denominator as defined in the module docstring (the pairs correct before the attack, and those of them wrong
    after it)."""
    _check(before, after, is_same)
    same = np.asarray(is_same, dtype=bool)
    ok_before, ok_after = correct(before, same, threshold), correct(after, same, threshold)
    out = {}
    for name, group in (("dodging", same), ("impersonation", ~same)):
        attacked = group & ok_before
        out[name] = (int(np.sum(~ok_after[attacked])), int(attacked.sum()))
    return out


def attack_success_rate(before: np.ndarray, after: np.ndarray, is_same: np.ndarray, threshold: float) -> dict:
    """``{"dodging": rate, "impersonation": rate}`` as defined in the module docstring (NaN: no pair)."""
    counts = attack_success_counts(before, after, is_same, threshold)
    return {name: broken / attacked if attacked else float("nan") for name, (broken, attacked) in counts.items()}


def budget_rates(before: np.ndarray, after: np.ndarray, is_same: np.ndarray, threshold: float) -> dict:
    """One budget's ``dodging_asr``, ``impersonation_asr`` and ``robust_accuracy`` (the module docstring), each
    with its Wilson 95% interval ``<rate>_ci`` and the pairs behind it ``<rate>_n``; a rate with no pair is NaN
    and its interval None."""
    ok_after = correct(after, is_same, threshold)
    counts = {**{f"{goal}_asr": c for goal, c in attack_success_counts(before, after, is_same, threshold).items()},
              "robust_accuracy": (int(ok_after.sum()), len(ok_after))}
    out: dict = {}
    for name, (k, n) in counts.items():
        out.update({name: k / n if n else float("nan"), f"{name}_ci": wilson(k, n), f"{name}_n": n})
    return out


def bracket(broken: np.ndarray, budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the coarse interval holding its minimal successful budget.

    broken:  (L, P) bool, pair p broken within budget ``budgets[l]``; must be monotone in l (a success
             within a smaller budget is one within every larger budget).
    budgets: (L,) increasing budgets > 0.
    Returns (lo, hi), each (P,): hi = the smallest budget that broke the pair (+inf if none), lo = the
    budget below it (0 below the first one; the largest budget if never broken).
    """
    broken, budgets = np.asarray(broken, dtype=bool), np.asarray(budgets, dtype=np.float64)
    if broken.ndim != 2 or broken.shape[0] != budgets.shape[0]:
        raise ValueError(f"broken must be (L, P) with L = len(budgets) = {len(budgets)}, got {broken.shape}")
    if np.any(np.diff(budgets) <= 0) or np.any(budgets <= 0):
        raise ValueError(f"budgets must be positive and increasing, got {budgets.tolist()}")
    if np.any(broken[:-1] & ~broken[1:]):
        raise ValueError("broken must be monotone over budgets: a pair broken within a budget is broken within larger ones")
    ever = broken.any(axis=0)
    first = np.argmax(broken, axis=0)
    hi = np.where(ever, budgets[first], np.inf)
    lo = np.where(ever, np.where(first > 0, budgets[np.maximum(first - 1, 0)], 0.0), budgets[-1])
    return lo, hi


def median_min_perturbation(min_budget: np.ndarray) -> float:
    """Median of per-pair minimal successful budgets (+inf = never broken), as in the module docstring;
    NaN for no pairs."""
    values = np.asarray(min_budget, dtype=np.float64)
    if values.ndim != 1 or np.any(np.isnan(values)) or np.any(values < 0):
        raise ValueError("min_budget must be a 1-D array of budgets >= 0 (+inf for never broken)")
    return float(np.median(values)) if values.size else float("nan")
