"""Aggregation rules: how institutions' updates combine into the federated update.

An institution *packs* its update before any encryption: ``[w_k * delta_k, w_k]``, its update scaled by
its weight ``w_k`` with the weight itself appended as the last value. The aggregator only *adds* packed
vectors (plaintext arrays and CKKS ciphertexts alike), and whoever decrypts the sum *unpacks* it:
``sum_k w_k delta_k / sum_k w_k``. So the weights are applied before encryption, the sum needs no
ciphertext multiplication, and an institution that drops out simply leaves the sum and its weight;
the last value also checks a decryption (it must equal the declared weights' sum).

Rules are registered in :data:`AGGREGATIONS` (DESIGN.md, convention 3):

* ``fedavg``: FedAvg weighted by sample count, ``w_k = n_k`` (McMahan et al. 2017, "Communication-
  Efficient Learning of Deep Networks from Decentralized Data");
* ``uniform``: every institution weighs 1 (the plain mean of the updates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.models.registry import Registry

AGGREGATIONS = Registry("aggregation rule")


class AggregationRule:
    """Weighted sum of packed updates. Subclasses define :meth:`weight`."""

    name = ""

    def weight(self, num_examples: int) -> float:
        """The weight of an institution that trained on ``num_examples`` images."""
        raise NotImplementedError

    def pack(self, update: np.ndarray, num_examples: int) -> np.ndarray:
        """float (P,) update -> float64 (P + 1,) ``[w * update, w]``."""
        w = self.weight(num_examples)
        return np.concatenate([np.asarray(update, np.float64) * w, [w]])

    @staticmethod
    def combine(packed: Sequence[Any]) -> Any:
        """Sum of packed vectors (numpy arrays or CKKS vectors: only ``+`` is used)."""
        if not packed:
            raise ValueError("no update to aggregate")
        total = packed[0]
        for p in packed[1:]:
            total = total + p
        return total

    @staticmethod
    def unpack(total: np.ndarray, expected_weight: float, sender: str, tolerance: float = 1e-3) -> np.ndarray:
        """Decrypted sum (P + 1,) -> the weighted mean update (P,). Its last value must equal
        ``expected_weight`` (the declared weights' sum, relative ``tolerance``), or the sum was made under
        another key or altered: ValueError naming ``sender``."""
        weight = float(total[-1])
        if not abs(weight - expected_weight) <= tolerance * max(abs(expected_weight), 1.0):
            raise ValueError(
                f"the update from {sender} carries weight {weight:.6g}, declared {expected_weight:.6g}: "
                "made under another key/context or altered"
            )
        return np.asarray(total[:-1], np.float64) / weight


@AGGREGATIONS.register("fedavg")
class FedAvg(AggregationRule):
    """w_k = n_k, the number of images institution k trained on."""

    name = "fedavg"

    def weight(self, num_examples: int) -> float:
        if num_examples < 1:
            raise ValueError(f"an institution needs at least one training image, got {num_examples}")
        return float(num_examples)


@AGGREGATIONS.register("uniform")
class Uniform(AggregationRule):
    """w_k = 1."""

    name = "uniform"

    def weight(self, num_examples: int) -> float:
        return 1.0


def create_aggregation(name: str) -> AggregationRule:
    """The rule registered as ``name``."""
    return AGGREGATIONS.create(name)
