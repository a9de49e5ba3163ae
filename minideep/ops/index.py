"""Indexing: ``tensor[index]`` with ints, slices, None, Ellipsis, integer arrays and masks.

The backward writes the gradient into a zero array at the same positions. With integer
arrays an element may be picked more than once, so there the gradients are summed with
a scatter-add (``backend.scatter_add``); plain slices and masks never repeat, so a plain
assignment is enough.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module, scatter_add
from ..tensor import Tensor


class GetItem(Function):
    """out = a[index];  dL/da = zeros with dL/dout added at the indexed positions."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.index = a.shape, index
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        return IntoZeros.run(grad, ctx.shape, ctx.index), None


class IntoZeros(Function):
    """out = zeros of ``shape`` with ``g`` added at ``index``: GetItem's backward, and
    its adjoint (so the backward of this op is GetItem again)."""

    @staticmethod
    def forward(ctx, g, shape, index):
        xp = get_array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        if _has_integer_array(index):
            scatter_add(out, index, g)
        else:
            out[index] = g
        ctx.index = index
        return out

    @staticmethod
    def backward(ctx, grad):
        return GetItem.run(grad, ctx.index), None, None


def _has_integer_array(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "dtype") and p.dtype.kind in "iu" for p in parts)


def _as_index(index, xp):
    """Tensors and lists inside an index become arrays of the tensor's array module."""
    if isinstance(index, tuple):
        return tuple(_as_index(i, xp) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return xp.asarray(index)
    return index


def getitem(a: Tensor, index) -> Tensor:
    index = _as_index(index, a.xp)
    try:
        return GetItem.apply(a, index)
    except IndexError as err:
        raise IndexError(
            f"index {index!r} is invalid for a tensor of shape {tuple(a.shape)}: {err}"
        ) from None
