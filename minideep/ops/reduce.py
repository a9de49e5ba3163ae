"""Reductions: sum, mean, max, min, argmax, argmin, var.

``dim`` may be an int, a tuple of ints or ``None`` (all dimensions), as in PyTorch.

Ties in ``max``/``min`` follow PyTorch:

* without ``dim`` (reduce everything) the gradient is shared equally by all elements
  that attain the maximum;
* with ``dim`` the result carries ``indices`` (the first maximal element along ``dim``)
  and the whole gradient goes to that element.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor

MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _normalise_dims(dim, ndim: int):
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < builtins.max(ndim, 1):
            raise IndexError(f"dimension {d} is out of range for a tensor with {ndim} dims")
        out.append(d % builtins.max(ndim, 1))
    return tuple(out)


def _keepdim_shape(shape, axes):
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _repeat_to(grad, shape):
    """``grad`` (with kept dims of size 1) repeated to ``shape``.

    A big result is a read-only ``broadcast_to`` view, which costs no memory (gradients
    are never written in place). A small one is a new array: on the small tensors where
    per-op overhead matters, ``broadcast_to``'s Python wrapper costs more than the copy
    (``benchmarks/results/fast_paths.md``).
    """
    xp = get_array_module(grad)
    if math.prod(shape) >= _BIG or isinstance(grad, Tensor):
        return xp.broadcast_to(grad, shape)
    out = xp.empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


_BIG = 1 << 16  # elements from which _repeat_to makes a view


class Sum(Function):
    """out = sum of a over ``axes``;  dout/da = 1: the gradient is broadcast back."""

    @staticmethod
    def forward(ctx, a, axes, keepdims):
        ctx.shape, ctx.axes = a.shape, axes
        return a.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.reshape(_keepdim_shape(ctx.shape, ctx.axes))
        return _repeat_to(grad, ctx.shape), None, None


class Mean(Function):
    """out = mean of a over ``axes``;  dout/da = 1/n, n the number of elements averaged."""

    @staticmethod
    def forward(ctx, a, axes, keepdims):
        ctx.shape, ctx.axes = a.shape, axes
        out = a.mean(axis=axes, keepdims=keepdims)
        ctx.count = a.size // builtins.max(out.size, 1) if a.size else 1
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.reshape(_keepdim_shape(ctx.shape, ctx.axes)) / ctx.count
        return _repeat_to(grad, ctx.shape), None, None


class Extreme(Function):
    """out = max (or, with ``largest=False``, min) over every element.

    The gradient is shared equally by every element equal to the result (PyTorch's rule).
    """

    @staticmethod
    def forward(ctx, a, largest):
        out = a.max() if largest else a.min()
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        mask = a == out
        return grad * mask / mask.sum(), None


class ExtremeAlongDim(Function):
    """values, indices = max (or, with ``largest=False``, min) along ``axis``; indices of
    the first extreme element.

    The gradient of ``values`` goes entirely to the element at ``indices``.
    """

    @staticmethod
    def forward(ctx, a, axis, keepdims, largest):
        xp = get_array_module(a)
        idx = xp.argmax(a, axis=axis) if largest else xp.argmin(a, axis=axis)
        idx = xp.expand_dims(idx, axis)
        values = xp.take_along_axis(a, idx, axis=axis)
        ctx.save_for_backward(idx)
        ctx.shape, ctx.axis = a.shape, axis
        if not keepdims:
            values, idx = values.squeeze(axis), idx.squeeze(axis)
        return values, idx.astype(xp.int64)

    @staticmethod
    def backward(ctx, grad, _grad_indices):
        (idx,) = ctx.saved_tensors
        axis = ctx.axis
        positions = get_array_module(idx).arange(ctx.shape[axis]).reshape(
            [-1 if i == axis else 1 for i in range(len(ctx.shape))]
        )
        grad = grad.reshape(idx.shape)
        picked = get_array_module(grad).where(positions == idx, grad, 0)
        return picked, None, None, None


# ---------------------------------------------------------------------------


def sum(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Sum.apply(a, _normalise_dims(dim, a.ndim), keepdim)


def mean(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if a.data.dtype.kind != "f":
        raise TypeError(f"mean needs a floating-point tensor, got dtype {a.dtype}")
    return Mean.apply(a, _normalise_dims(dim, a.ndim), keepdim)


def var(a: Tensor, dim=None, keepdim: bool = False, unbiased: bool = True) -> Tensor:
    """Variance, ``unbiased`` dividing by n - 1 (PyTorch's default) instead of n."""
    axes = _normalise_dims(dim, a.ndim)
    n = a.data.size if axes is None else math.prod(a.shape[d] for d in axes)
    centred = a - mean(a, dim, keepdim=True)
    return sum(centred * centred, dim, keepdim) / (n - 1 if unbiased else n)


def _extreme(a: Tensor, dim, keepdim: bool, largest: bool):
    if dim is None:
        return Extreme.apply(a, largest)
    (axis,) = _normalise_dims(dim, a.ndim)
    values, indices = ExtremeAlongDim.apply(a, axis, keepdim, largest)
    return MaxResult(values, indices)


def max(a: Tensor, dim=None, keepdim: bool = False):
    """The largest element, or ``(values, indices)`` along ``dim``."""
    return _extreme(a, dim, keepdim, largest=True)


def min(a: Tensor, dim=None, keepdim: bool = False):
    """The smallest element, or ``(values, indices)`` along ``dim``."""
    return _extreme(a, dim, keepdim, largest=False)


def argmax(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the first largest element (of the flattened tensor when ``dim`` is None)."""
    xp = a.xp
    if dim is None:
        return Tensor(xp.asarray(xp.argmax(a.data)).astype(xp.int64))
    out = xp.argmax(a.data, axis=dim)
    if keepdim:
        out = xp.expand_dims(out, dim)
    return Tensor(out.astype(xp.int64))


def argmin(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the first smallest element (of the flattened tensor when ``dim`` is None)."""
    return argmax(-a.detach(), dim, keepdim)
