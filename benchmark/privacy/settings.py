"""The privacy-evidence knobs (the gradient-inversion attack of :mod:`benchmark.privacy.inversion`).

A plain frozen dataclass in the style of :mod:`benchmark.config` (range and choice metadata that
``config.build`` validates), kept apart from the attack so that loading the config does not import torch.
The ``federated`` section of params.yaml nests it as ``federated.privacy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

THREATS = ("agnostic", "known_head")
OBJECTIVES = ("cosine", "l2")


def _num(default: float, lo: float | None, hi: float | None, ends: str = "[]") -> Any:
    return field(default=default, metadata={"range": (lo, hi, ends)})


def _choice(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"choices": choices})


@dataclass(frozen=True)
class PrivacyConfig:
    """Gradient inversion run as the party that sees one institution's individual update.

    batch_size: faces per local step of the attacked update (2-64; BatchNorm needs 2; the federation's own
                steps take ``federated.batch_size``, and leakage falls as the batch grows).
    batches:    distinct batches the institution holds in the attacked update, each one local step per
                epoch (1-64): it trains ``federated.local_epochs`` epochs over batch_size x batches faces with
                the federation's optimizer, learning rate schedule, weight decay and augmentation, and ships
                the weight change (its real local training, on fewer faces).
    iterations: optimizer steps of the attack (Adam on the dummy images).
    lr:         Adam learning rate on pixels in [0, 1] (and on the free embedding gradients).
    tv_weight:  weight of the total-variation prior (Geiping et al. 2020), per pixel, >= 0.
    objective:  "cosine": 1 - cosine similarity of the update vectors (Geiping et al. 2020);
                "l2": squared Euclidean distance (Zhu et al. 2019, DLG).
    threat:     "agnostic": the attacker knows the shared network and the training protocol, not the
                institution's private head nor the labels (it solves for dL/d(embedding) as free variables):
                our federation; "known_head": it also knows the head and the labels, an upper bound on leakage.
    smoothing:  the attacker's surrogate for Adam (benchmark/privacy/inversion.py): it replays AdamW with an
                epsilon of ``smoothing`` x each tensor's mean |gradient| (0: torch's exact AdamW, whose near-sign
                first steps pass the attack almost no gradient); ignored for SGD.
    far:        false accept rate of the verification threshold a reconstruction must pass to count as
                re-identified (the threshold is measured on the pool images' genuine/impostor scores).
    """

    batch_size: int = _num(4, 2, 64)
    batches: int = _num(2, 1, 64)
    iterations: int = _num(300, 1, 100_000)
    lr: float = _num(0.1, 0.0, 10.0, "(]")
    tv_weight: float = _num(1e-2, 0.0, 100.0)
    objective: str = _choice("cosine", *OBJECTIVES)
    threat: str = _choice("agnostic", *THREATS)
    smoothing: float = _num(1.0, 0.0, 100.0)
    far: float = _num(1e-2, 0.0, 1.0, "(]")
