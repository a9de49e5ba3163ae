"""Indexing: ``tensor[index]`` with ints, slices, None, Ellipsis, integer arrays and masks.

The backward writes the gradient into a zero array at the same positions. With integer
arrays an element may be picked more than once, so there the gradients are summed with
a scatter-add (``backend.scatter_add``); plain slices and masks never repeat, so a plain
assignment is enough.

``gather``, ``index_select``, ``scatter_add``, ``sort`` and ``topk`` are this same pair of
ops, GetItem and its adjoint IntoZeros, with an index built from integer arrays: gather
along ``dim`` is ``a[i0, ..., index, ..., iN]`` with each other ``i`` an ``arange``.
"""

from __future__ import annotations

from collections import namedtuple

from .. import backend
from ..autograd import Function
from ..backend import get_array_module
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
            backend.scatter_add(out, index, g)
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


# ---------------------------------------------------------------------------
# Gathering and scattering along a dimension.

SortResult = namedtuple("SortResult", ["values", "indices"])
TopKResult = namedtuple("TopKResult", ["values", "indices"])


def _along(index, dim: int) -> tuple:
    """The integer-array index picking ``a[..., index[p], ...]`` at every position p of
    ``index``: ``index`` itself for ``dim``, an ``arange`` for every other dimension."""
    xp = get_array_module(index)
    ndim = index.ndim
    return tuple(
        index if d == dim else xp.arange(n).reshape([-1 if k == d else 1 for k in range(ndim)])
        for d, n in enumerate(index.shape)
    )


def _index_array(index, what: str):
    data = index.data if isinstance(index, Tensor) else index
    if getattr(data, "dtype", None) is None or data.dtype.kind not in "iu":
        raise TypeError(
            f"{what}: the index must be an integer (int64) tensor, got "
            f"{getattr(data, 'dtype', type(data).__name__)}"
        )
    return data


def _check_range(index, n: int, dim: int, what: str) -> None:
    if index.size and (int(index.min()) < 0 or int(index.max()) >= n):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexError(f"{what}: index {bad} is out of bounds for dimension {dim} with size {n}")


def _dim(dim: int, ndim: int, what: str) -> int:
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{what}: dimension {dim} is out of range for a tensor with {ndim} dims")
    return dim % max(ndim, 1)


def _check_gather_shapes(a: Tensor, dim: int, index, what: str, src=None) -> None:
    if index.ndim != a.ndim:
        raise ValueError(
            f"{what}: index of shape {tuple(index.shape)} must have as many dims as the "
            f"input of shape {tuple(a.shape)}"
        )
    for d, (k, n) in enumerate(zip(index.shape, a.shape)):
        if d != dim and k > n:
            raise ValueError(
                f"{what}: index of shape {tuple(index.shape)} is larger than the input of "
                f"shape {tuple(a.shape)} in dimension {d}"
            )
    if src is not None and (
        src.ndim != index.ndim or any(k > n for k, n in zip(index.shape, src.shape))
    ):
        raise ValueError(
            f"{what}: index of shape {tuple(index.shape)} is larger than src of shape "
            f"{tuple(src.shape)}"
        )
    _check_range(index, a.shape[dim] if a.ndim else 1, dim, what)


def gather(a: Tensor, dim: int, index) -> Tensor:
    """out[p] = a[p with its ``dim`` coordinate replaced by index[p]]; out has index's
    shape (which may be smaller than a's in the other dims). The gradient is scattered
    back, summed where an element was gathered more than once."""
    index = _index_array(index, "gather")
    dim = _dim(dim, a.ndim, "gather")
    _check_gather_shapes(a, dim, index, "gather")
    if a.ndim == 0:
        return GetItem.apply(a, ())
    return GetItem.apply(a, _along(index, dim))


def scatter_add(a: Tensor, dim: int, index, src: Tensor) -> Tensor:
    """A copy of ``a`` with src[p] added at a[p with its ``dim`` coordinate replaced by
    index[p]], for each position p of ``index`` (repeated targets summed): the adjoint of
    :func:`gather`. Only the leading ``index.shape`` block of ``src`` is used."""
    index = _index_array(index, "scatter_add")
    dim = _dim(dim, a.ndim, "scatter_add")
    if src.dtype != a.dtype:
        raise TypeError(f"scatter_add: src has dtype {src.dtype} but the input has dtype {a.dtype}")
    _check_gather_shapes(a, dim, index, "scatter_add", src)
    if src.shape != index.shape:
        src = src[tuple(slice(0, k) for k in index.shape)]
    return a + IntoZeros.apply(src, a.shape, _along(index, dim))


def index_select(a: Tensor, dim: int, index) -> Tensor:
    """The slices ``index`` (a 1-d integer tensor) of ``a`` along ``dim``."""
    index = _index_array(index, "index_select")
    if index.ndim > 1:
        raise ValueError(f"index_select: the index must be 1-d, got shape {tuple(index.shape)}")
    dim = _dim(dim, a.ndim, "index_select")
    _check_range(index, a.shape[dim] if a.ndim else 1, dim, "index_select")
    if a.ndim == 0:
        return GetItem.apply(a, ())
    return GetItem.apply(a, (slice(None),) * dim + (index.reshape(-1),))


def _stable_order(data, axis: int, descending: bool):
    """Stable argsort along ``axis``: equal elements keep their order, NaN counts as the
    largest value (last ascending, first descending), as PyTorch's ``stable=True``.

    Descending: sort the reversed array ascending and reverse the result, so that equal
    elements still come lowest index first."""
    xp = get_array_module(data)
    if not descending:
        return xp.argsort(data, axis=axis, kind="stable")
    backwards = xp.argsort(xp.flip(data, axis), axis=axis, kind="stable")
    return (data.shape[axis] - 1) - xp.flip(backwards, axis)


def argsort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``a`` along ``dim`` (always a stable sort), int64."""
    if a.ndim == 0:
        return Tensor(a.xp.zeros((), dtype=a.xp.int64))
    axis = _dim(dim, a.ndim, "argsort")
    return Tensor(_stable_order(a.data, axis, descending).astype(a.xp.int64, copy=False))


def sort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """``(values, indices)``: ``a`` sorted along ``dim`` (stable: ties keep their order)
    and where each value came from. The gradient of values goes back to those positions."""
    indices = argsort(a, dim, descending)
    return SortResult(gather(a, dim, indices.data), indices)


def topk(a: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) elements
    along ``dim``, best first; among equal elements the lowest index comes first."""
    if a.ndim == 0:
        a1 = a.reshape(1)
        values, indices = topk(a1, k, 0, largest, sorted)
        return TopKResult(values.reshape(()), Tensor(indices.data.reshape(())))
    axis = _dim(dim, a.ndim, "topk")
    n = a.shape[axis]
    if not 0 <= k <= n:
        raise ValueError(f"topk: k={k} is out of range for dimension {dim} of size {n}")
    order = _stable_order(a.data, axis, descending=largest)
    indices = order[(slice(None),) * axis + (slice(0, k),)].astype(a.xp.int64, copy=False)
    return TopKResult(gather(a, axis, indices), Tensor(indices))
