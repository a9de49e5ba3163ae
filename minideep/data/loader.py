"""DataLoader: batches of samples from a dataset, as minideep Tensors.

One epoch is one pass over ``range(len(dataset))``, in order or shuffled, cut into
groups of ``batch_size`` indices; each group's samples are stacked by
:func:`default_collate` into one Tensor per field::

    [(clip_0, 3), (clip_1, 0), ...]  ->  (Tensor (B, *clip.shape), Tensor int64 (B,))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .. import backend
from ..tensor import Tensor


def default_collate(samples: list, device: str = "cpu"):
    """Stack a list of samples into a batch, field by field.

    Tuples and lists are collated per position, dicts per key. Tensors are stacked
    keeping their dtype; NumPy arrays and Python numbers follow ``md.tensor``'s rules
    (floats -> float32, integers -> int64, so class labels become int64). Strings are
    returned as a list. Everything else in a field is left as a list.
    """
    first = samples[0]
    if isinstance(first, tuple | list):
        if any(len(s) != len(first) for s in samples):
            raise ValueError(
                f"default_collate: samples have different lengths {[len(s) for s in samples]}"
            )
        return type(first)(default_collate(list(field), device) for field in zip(*samples))
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples], device) for key in first}
    if isinstance(first, Tensor):
        xp = first.xp
        data = xp.stack([s.data for s in samples])
        return Tensor(data, dtype=data.dtype, device=device)
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, np.ndarray | np.generic | int | float | bool) or hasattr(
        first, "__array__"
    ):
        shapes = {np.shape(s) for s in samples}
        if len(shapes) > 1:
            raise ValueError(
                f"default_collate: cannot stack samples of different shapes {sorted(shapes)}"
            )
        if hasattr(first, "__cuda_array_interface__"):  # CuPy arrays stay on their device
            return Tensor(backend.get_array_module(first).stack(samples), device=device)
        return Tensor(np.stack([np.asarray(s) for s in samples]), device=device)
    return list(samples)


class DataLoader:
    """Iterate over a dataset in batches.

    Args:
        dataset: anything with ``len()`` and ``[i]``.
        batch_size: samples per batch.
        shuffle: a new random order every epoch, drawn from ``generator`` or minideep's
            generator, so ``md.manual_seed(n)`` makes the orders repeat.
        drop_last: skip the last batch when it is smaller than ``batch_size``.
        collate_fn: ``list of samples -> batch`` (default :func:`default_collate`).
        generator: a ``numpy.random.Generator`` of its own for the shuffles.
        device: where the batch tensors are put (``"cpu"`` or ``"cuda"``).

    ``len(loader)`` is the number of batches per epoch.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable | None = None,
        generator: np.random.Generator | None = None,
        device: str = "cpu",
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.drop_last, self.generator = drop_last, generator
        self.device = backend.check_device(device)
        self.collate_fn = collate_fn or (lambda samples: default_collate(samples, self.device))

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator:
        n = len(self.dataset)
        if self.shuffle:
            order = (self.generator or backend.numpy_rng()).permutation(n)
        else:
            order = np.arange(n)
        for start in range(0, n, self.batch_size):
            indices = order[start : start + self.batch_size]
            if self.drop_last and len(indices) < self.batch_size:
                return
            yield self.collate_fn([self.dataset[int(i)] for i in indices])
