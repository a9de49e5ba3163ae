"""Reductions: sum, mean, max, min, argmax, argmin, var, std, logsumexp, norm; cumsum.

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
import numbers
from collections import namedtuple

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .math import where

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


class CumSum(Function):
    """out[..., i, ...] = sum of a[..., :i+1, ...] along ``axis``.

    Each a[j] reaches every out[i] with i >= j, so dL/da[j] = sum over i >= j of
    dL/dout[i]: the cumulative sum of the gradient taken from the other end.
    """

    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        return get_array_module(a).cumsum(a, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        axis = ctx.axis
        return xp.flip(xp.cumsum(xp.flip(grad, axis), axis), axis), None


# ---------------------------------------------------------------------------


def sum(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Sum.apply(a, _normalise_dims(dim, a.ndim), keepdim)


def mean(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if a.data.dtype.kind != "f":
        raise TypeError(f"mean needs a floating-point tensor, got dtype {a.dtype}")
    return Mean.apply(a, _normalise_dims(dim, a.ndim), keepdim)


def var(a: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Variance over ``dim``: sum((a - mean)^2) / max(0, n - correction).

    ``correction=1`` (the default) is the unbiased estimate, ``0`` the population variance;
    ``unbiased=True/False`` is PyTorch's older spelling of ``correction=1/0``.
    """
    if unbiased is not None and correction is not None:
        raise ValueError("var: give either unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _normalise_dims(dim, a.ndim)
    n = a.data.size if axes is None else math.prod(a.shape[d] for d in axes)
    centred = a - mean(a, dim, keepdim=True)
    return sum(centred * centred, dim, keepdim) / builtins.max(0, n - correction)


def std(a: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Standard deviation: sqrt(var) with the same arguments as :func:`var`."""
    return var(a, dim, unbiased, keepdim, correction=correction).sqrt()


def logsumexp(a: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(a))) over ``dim``, computed as m + log(sum(exp(a - m))) with m the max.

    The shift m is a constant (it cancels in the value and in every derivative), so
    huge entries do not overflow; an infinite m is replaced by 0, as PyTorch does.
    """
    axes = _normalise_dims(dim, a.ndim)
    xp = a.xp
    m = xp.max(a.data, axis=axes, keepdims=True) if a.data.size else xp.zeros(())
    m = Tensor(xp.where(xp.isinf(m), 0, m).astype(a.dtype, copy=False))
    total = sum((a - m).exp(), dim, keepdim)
    return total.log() + (m if keepdim else m.reshape(total.shape))


def norm(a: Tensor, p=2, dim=None, keepdim: bool = False) -> Tensor:
    """The vector p-norm over ``dim`` (every element when None): (sum |a|^p)^(1/p).

    ``p`` a number > 0, ``inf`` (max |a|), ``-inf`` (min |a|), ``0`` (count of non-zero
    elements) or ``"fro"`` (= 2). As in PyTorch the gradient at a zero vector is 0, and at
    ``inf`` it is shared equally by the elements of largest |a|.
    """
    if p == "fro":
        p = 2
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise ValueError(f"norm: p must be a number or 'fro', got {p!r}")
    if a.data.dtype.kind != "f":
        raise TypeError(f"norm needs a floating-point tensor, got dtype {a.dtype}")
    if p in (math.inf, -math.inf):
        size = a.abs()
        axes = _normalise_dims(dim, a.ndim)
        reduce = a.xp.max if p > 0 else a.xp.min
        best = reduce(size.data, axis=axes, keepdims=True)
        hit = Tensor((size.data == best).astype(a.dtype))  # constant: where the extreme is
        return sum(size * hit, dim, keepdim) / sum(hit, dim, keepdim)
    if p == 0:
        count = sum(Tensor((a.data != 0).astype(a.dtype)), dim, keepdim)
        return sum(a * 0, dim, keepdim) + count  # no gradient, as PyTorch
    if p == 1:
        return sum(a.abs(), dim, keepdim)
    if p == 2:
        return _root(sum(a * a, dim, keepdim), 2)
    size = a.abs()
    zero = size.data == 0
    if p < 1:  # |a|^p has an infinite slope at 0: PyTorch takes 0 there
        size = where(zero, 0, where(zero, 1, size) ** p)
    else:
        size = size**p
    return _root(sum(size, dim, keepdim), p)


def _root(s: Tensor, p) -> Tensor:
    """s ** (1/p) for s >= 0, with gradient 0 (not infinity) where s == 0."""
    zero = s.data == 0
    safe = where(zero, 1, s)
    return where(zero, 0, safe.sqrt() if p == 2 else safe ** (1 / p))


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


def cumsum(a: Tensor, dim: int) -> Tensor:
    """Running sums along ``dim`` (integers and bools are summed as int64, as PyTorch)."""
    if a.ndim == 0:
        _normalise_dims(dim, 1)
        return cumsum(a.reshape(1), 0).reshape(())
    (axis,) = _normalise_dims(dim, a.ndim)
    if a.data.dtype.kind in "biu":
        a = a.long()
    return CumSum.apply(a, axis)
