"""Training batches: in the training process (the default stream) or gathered ahead by DataLoader workers."""

import numpy as np
import pytest
import torch

from benchmark.train.common import BatchStream, load_batch
from benchmark.train.loader import TrainBatches

CPU = torch.device("cpu")
IMAGES = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
INDICES = np.arange(3, 40)


def test_no_workers_is_the_default_stream_bit_for_bit():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    batches, stream = TrainBatches(IMAGES, INDICES, 8, CPU, "standard", rng_a), BatchStream(INDICES, 8, rng_b)
    for _ in range(6):
        idx, expected_idx = batches.draw(), stream.next()
        assert np.array_equal(idx, expected_idx)
        assert torch.equal(batches.load(idx), load_batch(IMAGES, expected_idx, CPU, "standard", rng_b))


def test_workers_gather_each_index_once_per_pass_reproducibly():
    runs = []
    for _ in range(2):
        batches = TrainBatches(IMAGES, INDICES, 8, CPU, "none", np.random.default_rng(0), workers=2, seed=3)
        drawn = []
        for _ in range(len(INDICES) // 8):
            idx = batches.draw()
            x = batches.load(idx)
            assert torch.equal(x, load_batch(IMAGES, idx, CPU))  # the worker gathered exactly these images
            drawn.append(idx)
        runs.append(np.concatenate(drawn))
    assert np.array_equal(runs[0], runs[1])  # same seed, same batches
    assert len(set(runs[0].tolist())) == len(runs[0]) and set(runs[0].tolist()) <= set(INDICES.tolist())


def test_load_takes_the_batch_draw_returned_last():
    batches = TrainBatches(IMAGES, INDICES, 4, CPU, "none", np.random.default_rng(0), workers=1)
    with pytest.raises(ValueError, match="load the batch that draw returned last"):
        batches.load(np.arange(4))
    with pytest.raises(ValueError, match="loader workers must be >= 0"):
        TrainBatches(IMAGES, INDICES, 4, CPU, "none", np.random.default_rng(0), workers=-1)
