"""95% intervals for the rates the evaluation reports: pure functions.

Every rate the suite reports is k successes out of n trials: verification accuracy over pairs, TAR over genuine
pairs, attack success over the pairs an attack could break, robust accuracy over attacked pairs, DIR over mated
probes. :func:`wilson` gives the Wilson score interval (scipy's ``binomtest(...).proportion_ci(method="wilson")``),
whose coverage stays near the nominal level for small n and rates near 0 or 1, where the normal approximation
fails (Brown, Cai and DasGupta 2001, "Interval estimation for a binomial proportion").

Two limits the intervals do not remove, said where they are shown:

* pairs that share an identity are not independent, so an interval over pairs is somewhat narrow;
* TAR at a FAR is measured at a threshold set by the impostor scores' tail; the interval covers the genuine
  pairs' sampling only. With n impostors a FAR f rests on about f * n false accepts, and a handful of impostor
  scores then sets the threshold: :func:`far_is_reliable` flags a FAR with fewer than ten expected false accepts
  behind it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

CONFIDENCE = 0.95
MIN_FALSE_ACCEPTS = 10


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> list[float] | None:
    """[lo, hi]: the Wilson score interval of the rate ``successes / trials``; None when ``trials`` is 0."""
    k, n = int(successes), int(trials)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} successes of {trials} trials")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return None
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return [float(ci.low), float(ci.high)]


def rate_interval(rate: float, trials: int) -> list[float] | None:
    """:func:`wilson` of a rate already computed as k / ``trials`` (k recovered by rounding); None for no trials
    or a NaN rate."""
    if trials == 0 or not np.isfinite(rate):
        return None
    return wilson(round(rate * trials), trials)


def far_is_reliable(far: float, impostors: int, min_false_accepts: int = MIN_FALSE_ACCEPTS) -> bool:
    """Whether ``impostors`` impostor pairs give at least ``min_false_accepts`` expected false accepts at ``far``."""
    return far * impostors >= min_false_accepts
