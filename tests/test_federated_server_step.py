"""The server optimizer the institutions apply to each decrypted mean (benchmark/federated/server_step.py)."""

import numpy as np
import pytest

from benchmark.federated.server_step import server_step

STATS = np.array([False, False, True])


def test_server_lr_one_without_momentum_is_fedavg():
    w, mean = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 0.25])
    new, momentum = server_step(w, mean, None, 1.0, 0.0, STATS)
    assert np.array_equal(new, w + mean) and momentum is None


def test_momentum_accumulates_the_means_and_statistics_take_the_plain_mean():
    # Prepare: two rounds of FedAvgM by hand: m1 = d1, w1 = w0 + lr d1; m2 = beta m1 + d2, w2 = w1 + lr m2
    w0, d1, d2 = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 0.25]), np.array([0.1, 0.2, -0.5])
    # Execute
    w1, m1 = server_step(w0, d1, None, 2.0, 0.9, STATS)
    w2, m2 = server_step(w1, d2, m1, 2.0, 0.9, STATS)
    # Assert: the weights follow FedAvgM, the running statistic (last entry) the plain mean, its momentum stays 0
    assert np.allclose(w2[:2], w0[:2] + 2.0 * d1[:2] + 2.0 * (0.9 * d1[:2] + d2[:2]))
    assert w2[2] == pytest.approx(3.0 + 0.25 - 0.5) and m1[2] == m2[2] == 0.0
    assert np.allclose(m2[:2], 0.9 * d1[:2] + d2[:2])


def test_mismatched_shapes_fail_naming_them():
    with pytest.raises(ValueError, match="must have one shape"):
        server_step(np.zeros(3), np.zeros(2), None, 1.0, 0.0, STATS)
    with pytest.raises(ValueError, match="momentum"):
        server_step(np.zeros(3), np.zeros(3), np.zeros(4), 1.0, 0.9, STATS)
