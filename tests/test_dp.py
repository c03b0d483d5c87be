"""Differential privacy at the institutions (benchmark/federated/dp.py): the clip, the noise, the accountant."""

import numpy as np
import pytest

from benchmark.config import ConfigError, DPConfig, Params, build
from benchmark.federated import dp


def test_off_leaves_the_update_untouched():
    update = np.arange(5.0)
    assert dp.privatize(update, DPConfig()) is update
    assert dp.epsilon_record(DPConfig(), rounds=3) is None


def test_the_update_is_clipped_to_the_norm_then_noised_with_std_sigma_times_clip():
    cfg = DPConfig(noise_multiplier=0.5, clip=2.0)
    big = np.full(200_000, 1.0)  # norm 447: clipped to 2
    noised = dp.privatize(big, cfg, np.random.default_rng(0))
    noise = noised - big * 2.0 / np.linalg.norm(big)
    assert abs(noise.std() - 1.0) < 0.01 and abs(noise.mean()) < 0.01
    small = np.full(4, 0.1)  # norm 0.2, below the clip: kept as it is
    tiny = DPConfig(noise_multiplier=1e-9, clip=2.0)
    assert np.allclose(dp.privatize(small, tiny, np.random.default_rng(0)), small, atol=1e-6)


def test_noise_is_not_the_seeds():
    cfg = DPConfig(noise_multiplier=1.0)
    assert not np.array_equal(dp.privatize(np.zeros(8), cfg), dp.privatize(np.zeros(8), cfg))


def test_epsilon_grows_with_rounds_and_falls_with_noise():
    cfg = DPConfig(noise_multiplier=1.0, delta=1e-5)
    record = dp.epsilon_record(cfg, rounds=4)
    assert record["per_round"] == record["cumulative"][0]
    assert all(a < b for a, b in zip(record["cumulative"], record["cumulative"][1:]))
    assert dp.epsilon(DPConfig(noise_multiplier=2.0), 4) < record["cumulative"][-1]
    # the Gaussian mechanism's classical bound (Dwork & Roth, Thm A.1; valid for epsilon < 1) is an upper bound on one release
    sigma = 5.0
    classical = np.sqrt(2 * np.log(1.25 / 1e-5)) / sigma
    assert dp.epsilon(DPConfig(noise_multiplier=sigma), 1) < classical


@pytest.mark.parametrize("key, value", [("noise_multiplier", -1), ("clip", 0), ("delta", 1)])
def test_bad_settings_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"'federated.dp.{key}' = {value}"):
        build(Params, {"federated": {"dp": {key: value}}})
