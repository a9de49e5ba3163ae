"""Shape ops: reshape, permute, expand, concatenate, stack.

None of them changes a value, so each backward only moves the gradient back into the
input's layout.
"""

from __future__ import annotations

import itertools

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor


class Reshape(Function):
    """out = a with a new shape;  the gradient is reshaped back."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    """out = a with its axes reordered by ``dims``;  the gradient uses the inverse order."""

    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return get_array_module(grad).transpose(grad, inverse), None


class Expand(Function):
    """out = a broadcast to ``shape`` (a view);  the engine sums the gradient back."""

    @staticmethod
    def forward(ctx, a, shape):
        return get_array_module(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Cat(Function):
    """out = the inputs joined along ``axis``;  each input gets its slice of the gradient."""

    @staticmethod
    def forward(ctx, axis, *arrays):
        xp = get_array_module(arrays[0])
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        bounds = list(itertools.accumulate(ctx.sizes))[:-1]
        return (None, *xp.split(grad, bounds, axis=ctx.axis))


class Stack(Function):
    """out = the inputs stacked along a new ``axis``;  input i gets ``grad`` at position i."""

    @staticmethod
    def forward(ctx, axis, *arrays):
        xp = get_array_module(arrays[0])
        ctx.axis = axis
        return xp.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        n = grad.shape[ctx.axis]
        return (None, *(xp.take(grad, i, axis=ctx.axis) for i in range(n)))


# ---------------------------------------------------------------------------


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(a: Tensor, *shape) -> Tensor:
    shape = _shape_args(shape)
    known = 1
    for n in shape:
        if n != -1:
            known *= n
    size = a.data.size
    if (-1 not in shape and known != size) or (-1 in shape and (known == 0 or size % known)):
        raise ValueError(f"cannot reshape a tensor of shape {tuple(a.shape)} into {shape}")
    return Reshape.apply(a, shape)


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one."""
    if a.ndim == 0:
        return reshape(a, 1)
    start, end = start_dim % a.ndim, end_dim % a.ndim
    shape = a.shape[:start] + (-1,) + a.shape[end + 1 :]
    if 0 in a.shape:
        merged = 1
        for n in a.shape[start : end + 1]:
            merged *= n
        shape = a.shape[:start] + (merged,) + a.shape[end + 1 :]
    return Reshape.apply(a, shape)


def permute(a: Tensor, *dims) -> Tensor:
    dims = tuple(d % a.ndim for d in _shape_args(dims))
    if sorted(dims) != list(range(a.ndim)):
        raise ValueError(
            f"permute: {dims} is not a permutation of the {a.ndim} dims of {tuple(a.shape)}"
        )
    return Permute.apply(a, dims)


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(a.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(a, tuple(dims))


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    dim = dim % (a.ndim + 1)
    return Reshape.apply(a, a.shape[:dim] + (1,) + a.shape[dim:])


def squeeze(a: Tensor, dim=None) -> Tensor:
    """Remove dimensions of size 1 (only ``dim`` when it is given and has size 1)."""
    if dim is None:
        shape = tuple(n for n in a.shape if n != 1)
    else:
        dim = dim % a.ndim
        if a.shape[dim] != 1:
            return a
        shape = a.shape[:dim] + a.shape[dim + 1 :]
    return Reshape.apply(a, shape)


def expand(a: Tensor, *shape) -> Tensor:
    """Broadcast to ``shape`` (``-1`` keeps a dimension)."""
    shape = _shape_args(shape)
    offset = len(shape) - a.ndim
    shape = tuple(a.shape[i - offset] if n == -1 else n for i, n in enumerate(shape))
    return Expand.apply(a, shape)


def _check_same(tensors, what: str, dim: int) -> None:
    if len(tensors) == 0:
        raise ValueError(f"{what}: expected a non-empty sequence of tensors")
    ref = tensors[0].shape
    for i, t in enumerate(tensors):
        other = tuple(n for j, n in enumerate(t.shape) if j != dim) if what == "cat" else t.shape
        want = tuple(n for j, n in enumerate(ref) if j != dim) if what == "cat" else ref
        if len(t.shape) != len(ref) or other != want:
            raise ValueError(
                f"{what}: tensor 0 has shape {tuple(ref)} but tensor {i} has shape {tuple(t.shape)}"
            )


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate tensors along an existing dimension ``dim``."""
    tensors = list(tensors)
    _check_same(tensors, "cat", dim % max(tensors[0].ndim, 1) if tensors else 0)
    return Cat.apply(dim % tensors[0].ndim, *tensors)


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack equally shaped tensors along a new dimension ``dim``."""
    tensors = list(tensors)
    _check_same(tensors, "stack", dim)
    return Stack.apply(dim % (tensors[0].ndim + 1), *tensors)
