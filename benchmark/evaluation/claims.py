"""The claims the findings make, each decided by a paired test on the same pairs: pure functions.

A claim compares variant ``a`` with variant ``b`` on one benchmark set, on the per-pair outcomes both produced
for the same pairs: ``clean`` (each pair decided at its fold's 10-fold threshold,
:func:`~benchmark.evaluation.verification.kfold_correct`) or ``robust`` (each attacked pair still decided
correctly at the variant's validation threshold after the headline attack at the headline budget; every variant
is attacked on the same pairs). :func:`~benchmark.evaluation.paired.paired_difference` gives the difference
a - b, its 95% paired bootstrap interval and McNemar's p; :func:`judge` turns the interval into a verdict:

* ``better``: a above b. met when the interval lies above 0, missed when below, else not shown;
* ``no_worse``: a not below b by more than ``margin`` (non-inferiority). met when the interval lies above
  -margin, missed when below it, else not shown;
* ``within``: a within ``margin`` of b either way (equivalence). met when the interval lies inside
  (-margin, margin), missed when it lies wholly outside, else not shown.

A margin given as ``FOLD_STD`` is the fold standard deviation of a's clean 10-fold accuracy on that set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.evaluation.paired import paired_difference, verdict

KINDS = ("better", "no_worse", "within")
METRICS = ("clean", "robust")
VERDICTS = ("met", "missed", "not shown")
FOLD_STD = -1.0  # a margin that stands for a's own fold standard deviation


@dataclass(frozen=True)
class Claim:
    """``a`` against ``b`` on ``metric``, judged as ``kind`` with ``margin`` (accuracy units: 0.02 = 2 points);
    ``source``: the method whose claim it is; ``statement``: the claim in words."""

    source: str
    a: str
    b: str
    metric: str
    kind: str
    margin: float
    statement: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.metric not in METRICS:
            raise ValueError(f"claim kind {self.kind!r} / metric {self.metric!r} not allowed; kinds: {KINDS}, "
                             f"metrics: {METRICS}")
        if self.margin < 0 and self.margin != FOLD_STD:
            raise ValueError(f"a claim's margin must be >= 0 (or FOLD_STD), got {self.margin}")


# The source methods' claims, as their documents make them, with the targets this suite set for them.
CLAIMS = (
    Claim("semisupervised", "semisupervised", "supervised", "clean", "better", 0.0,
          "unlabelled faces raise accuracy over the same model trained on the labelled ones alone"),
    Claim("semisupervised", "semisupervised", "timm_reference", "clean", "better", 0.0,
          "the patent's model is more accurate than a standard timm backbone trained on the same faces"),
    Claim("hardened", "adversarial", "supervised", "robust", "better", 0.0,
          "hardening raises robust accuracy over the clean model"),
    Claim("hardened", "adversarial", "pgd_at", "robust", "no_worse", 0.02,
          "robust accuracy within 2 points of static PGD-AT, or better"),
    Claim("hardened", "adversarial", "pgd_at", "clean", "no_worse", 0.0,
          "clean accuracy at least static PGD-AT's"),
    Claim("hardened", "adversarial", "natural_then_at", "robust", "no_worse", 0.02,
          "robust accuracy within 2 points of natural training then PGD-AT (the closest prior art), or better"),
    Claim("federated", "federated_third_party", "federated_plaintext", "clean", "within", 0.005,
          "encrypted aggregation through a third party within 0.5 points of plaintext FedAvg"),
    Claim("federated", "federated_blind", "federated_plaintext", "clean", "within", 0.005,
          "blind (threshold-key) aggregation within 0.5 points of plaintext FedAvg"),
    Claim("federated", "federated_plaintext", "federated_centralized", "clean", "no_worse", 0.03,
          "FedAvg no more than 3 points below centralized training on the union of the data"),
)


def fine_tuning_claims(reference: str, fine_tuned: list[str]) -> tuple[Claim, ...]:
    """Each fine-tuned variant no worse than the pretrained ``reference`` it started from by more than its own fold std."""
    return tuple(Claim("pretrained", v, reference, "clean", "no_worse", FOLD_STD,
                       f"fine-tuned {v} no worse than {reference} by more than its own fold std") for v in fine_tuned)


def judge(ci: list[float], kind: str, margin: float) -> str:
    """The verdict (one of :data:`VERDICTS`) of a claim of ``kind`` with ``margin`` on the interval ``ci`` of a - b."""
    word = {"above": "met", "below": "missed", "not shown": "not shown"}
    if kind == "better":
        return word[verdict(ci, 0.0)]
    if kind == "no_worse":
        return word[verdict(ci, -margin)]
    if kind != "within":
        raise ValueError(f"claim kind {kind!r} not allowed; choose one of {KINDS}")
    low, high = verdict(ci, -margin), verdict(ci, margin)
    if low == "above" and high == "below":
        return "met"
    return "missed" if low == "below" or high == "above" else "not shown"


def decide(claims: tuple[Claim, ...], outcomes: dict[str, dict[str, np.ndarray]], fold_std: dict[str, float],
           benchmark: str, seed: int) -> list[dict]:
    """One finding per claim whose two variants both have outcomes: the claim's fields, ``benchmark``, the paired
    test (``difference``, ``ci``, ``p_value``, ``pairs``) and ``verdict``.

    outcomes: ``{metric: {variant: bool (P,)}}``, the per-pair outcomes on ``benchmark`` (the same pairs for every
    variant of a metric); fold_std: ``{variant: fold std of its clean accuracy}`` (for ``FOLD_STD`` margins)."""
    out = []
    for c in claims:
        per = outcomes.get(c.metric, {})
        if c.a not in per or c.b not in per:
            continue
        margin = fold_std[c.a] if c.margin == FOLD_STD else c.margin
        test = paired_difference(per[c.a], per[c.b], seed=seed)
        out.append({"source": c.source, "statement": c.statement, "benchmark": benchmark, "a": c.a, "b": c.b,
                    "metric": c.metric, "kind": c.kind, "margin": margin,
                    **{k: test[k] for k in ("difference", "ci", "p_value", "pairs")},
                    "verdict": judge(test["ci"], c.kind, margin)})
    return out
