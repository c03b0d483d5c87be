"""Training batches: which images (:meth:`TrainBatches.draw`), then the images themselves as float32 NCHW in
[0, 1] on the training device, augmented there (:meth:`TrainBatches.load`).

With ``workers = 0`` (the default) the indices come from a :class:`~benchmark.train.common.BatchStream` on the
run's generator, which the augmentation draws from too: one stream of random numbers, so a run is reproducible
bit for bit on the CPU. With ``workers > 0`` a PyTorch ``DataLoader`` gathers the uint8 images of index batches
in that many worker processes, ahead of the training step (``prefetch_factor`` batches each), in pinned memory
when the device is CUDA so the copy to the GPU overlaps the step; the indices then come from a BatchStream with a
generator of their own (seeded from the run's seed and the stream's number), since batches are drawn before the
augmentation of earlier ones. Such a run is reproducible too, but is another random stream than ``workers = 0``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from benchmark.train.common import BatchStream, load_batch, prepare_batch


class _Gather(Dataset):
    """``dataset[indices]`` -> (indices, uint8 (B, H, W, 3) tensor): one batch per item, gathered in a worker."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        return idx, torch.from_numpy(self.images[idx])  # fancy indexing: a fresh C-contiguous copy


class _Endless(Sampler):
    """The index batches of a BatchStream, without end."""

    def __init__(self, stream: BatchStream) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.stream.next()


class TrainBatches:
    """Batches of ``batch_size`` indices from ``indices`` into uint8 (N, H, W, 3) ``images``, loaded on ``device``
    and augmented by ``augment`` with ``rng`` (module docstring). ``stream_id`` tells apart the index generators
    of one run's several streams (the semi-supervised labelled and unlabelled ones) when ``workers > 0``."""

    def __init__(self, images: np.ndarray, indices: np.ndarray, batch_size: int, device: torch.device, augment: str,
                 rng: np.random.Generator, workers: int = 0, seed: int = 0, stream_id: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"loader workers must be >= 0, got {workers}")
        self.images, self.device, self.augment, self.rng = images, device, augment, rng
        self._drawn: tuple[np.ndarray, torch.Tensor] | None = None
        if workers == 0:
            self._stream, self._loader = BatchStream(indices, batch_size, rng), None
            return
        stream = BatchStream(indices, batch_size, np.random.default_rng([seed, stream_id]))
        self._loader = iter(DataLoader(_Gather(images), sampler=_Endless(stream), batch_size=None, num_workers=workers,
                                       pin_memory=device.type == "cuda", persistent_workers=True, prefetch_factor=2))

    def draw(self) -> np.ndarray:
        """The next batch's indices."""
        if self._loader is None:
            return self._stream.next()
        self._drawn = next(self._loader)
        return self._drawn[0]

    def load(self, idx: np.ndarray) -> torch.Tensor:
        """The drawn batch ``idx`` as float32 (B, 3, H, W) in [0, 1] on the device, augmented."""
        if self._loader is None:
            return load_batch(self.images, idx, self.device, self.augment, self.rng)
        if self._drawn is None or self._drawn[0] is not idx:
            raise ValueError("load the batch that draw returned last")
        batch, self._drawn = self._drawn[1].to(self.device, non_blocking=True), None
        return prepare_batch(batch, self.augment, self.rng)
