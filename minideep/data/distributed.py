"""``DistributedSampler``: each process's share of a dataset, as PyTorch deals it out.

With N processes (*replicas*) each epoch is one order of the whole dataset (shuffled
with ``seed + epoch``, so every process draws the same order), padded by repeating its
first indices until N divides it, then dealt round-robin: process ``r`` gets positions
``r, r + N, r + 2N, ...``. The shares are disjoint (apart from the padding) and together
cover the dataset, and all processes take the same number of steps per epoch::

    10 indices, 3 replicas, no shuffle:  [0 1 2 3 4 5 6 7 8 9 0 1]
        rank 0: [0, 3, 6, 9]   rank 1: [1, 4, 7, 0]   rank 2: [2, 5, 8, 1]

The assignment is PyTorch's exactly; the shuffled order is a NumPy permutation
(``numpy.random.default_rng(seed + epoch)``), so it differs from ``torch.randperm``'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


class DistributedSampler:
    """The indices of one process's share of ``dataset``, for ``DataLoader(sampler=...)``.

    Args:
        dataset: anything with ``len()``.
        num_replicas: number of processes (default: ``md.distributed.get_world_size()``).
        rank: this process's rank (default: ``md.distributed.get_rank()``).
        shuffle: a new order every epoch (call :meth:`set_epoch` before each one).
        seed: the order of epoch ``e`` is drawn with ``seed + e``; the same on every process.
        drop_last: drop the tail that does not divide evenly instead of padding.

    ``len(sampler)`` is the number of indices per process and epoch.
    """

    def __init__(
        self,
        dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        if num_replicas is None or rank is None:
            from .. import distributed

            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:  # pad with the first indices (again and again if need be)
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch``: call it at the start of every epoch when shuffling,
        or every epoch repeats the first one's order."""
        self.epoch = epoch
