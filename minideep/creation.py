"""Tensor creation: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``rand``, ``randn``.

Random tensors are drawn from minideep's own generator, so ``md.manual_seed(n)`` makes
them reproducible.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .tensor import Tensor, _as_array


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _make(array, requires_grad: bool) -> Tensor:
    t = Tensor(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (floats become float32 unless ``dtype``)."""
    device = backend.check_device(device)
    array = _as_array(data, dtype, device)
    if array is data or (isinstance(data, Tensor) and array is data.data):
        array = array.copy()  # like torch.tensor: never share memory with the source
    return _make(array, requires_grad)


def zeros(*size, dtype=np.float32, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    return _make(backend.xp_for(device).zeros(_shape(size), dtype=dtype), requires_grad)


def ones(*size, dtype=np.float32, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    return _make(backend.xp_for(device).ones(_shape(size), dtype=dtype), requires_grad)


def full(size, fill_value, dtype=None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = (
            np.int64
            if isinstance(fill_value, (int, np.integer)) and not isinstance(fill_value, bool)
            else np.float32
        )
    xp = backend.xp_for(device)
    return _make(xp.full(tuple(size), fill_value, dtype=dtype), requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _make(t.xp.zeros(t.shape, dtype=dtype or t.dtype), requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _make(t.xp.ones(t.shape, dtype=dtype or t.dtype), requires_grad)


def arange(
    start, end=None, step=1, dtype=None, device: str = "cpu", requires_grad: bool = False
) -> Tensor:
    """Like ``torch.arange``: int64 for integer arguments, float32 otherwise."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    xp = backend.xp_for(device)
    return _make(xp.arange(start, end, step, dtype=dtype), requires_grad)


def rand(*size, dtype=np.float32, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1)."""
    device = backend.check_device(device)
    data = backend.default_rng(device).random(_shape(size), dtype=np.float64).astype(dtype)
    return _make(data, requires_grad)


def randn(*size, dtype=np.float32, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """Standard normal."""
    device = backend.check_device(device)
    data = backend.default_rng(device).standard_normal(_shape(size)).astype(dtype)
    return _make(data, requires_grad)
