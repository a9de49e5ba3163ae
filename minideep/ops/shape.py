"""Shape ops: reshape, permute, expand, concatenate, stack, flip, roll; and the ones
composed of them and of slicing: repeat, chunk, split, unbind.

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


class Flip(Function):
    """out = a reversed along ``axes``;  the gradient is reversed back (flip is its own
    inverse)."""

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return get_array_module(a).flip(a, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        return Flip.run(grad, ctx.axes), None


class Roll(Function):
    """out = a shifted cyclically by ``shifts`` along ``axes`` (``None``: the flattened
    tensor);  the gradient is shifted back by ``-shifts``."""

    @staticmethod
    def forward(ctx, a, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return get_array_module(a).roll(a, shifts, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return Roll.run(grad, back, ctx.axes), None, None


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


def on_no_samples(op, x):
    """``op(x)`` for a batch of no samples (N = 0, as PyTorch allows): run on one
    sample of zeros put after x, then keep none of the output's samples. The output has
    the shape (0, C_out, *out), and every gradient is zero (x's has no elements): the
    kept slice is empty. The ops themselves need no case for it (NumPy cannot size a
    reshape's -1 when another axis is 0). Used by the convolutions and GroupNorm."""
    zero = Tensor(x.xp.zeros((1,) + tuple(x.shape[1:]), dtype=x.dtype))
    return op(cat([x, zero]))[:0]


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack equally shaped tensors along a new dimension ``dim``."""
    tensors = list(tensors)
    _check_same(tensors, "stack", dim)
    return Stack.apply(dim % (tensors[0].ndim + 1), *tensors)


def _dim(dim: int, ndim: int, what: str) -> int:
    if not -ndim <= dim < ndim:
        raise IndexError(f"{what}: dimension {dim} is out of range for a tensor with {ndim} dims")
    return dim % ndim


def _dims(dims, ndim: int, what: str) -> tuple:
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    out = tuple(_dim(d, ndim, what) for d in dims)
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: dims {dims} name a dimension twice")
    return out


def flip(a: Tensor, dims) -> Tensor:
    """Reverse the order of the elements along each of ``dims``."""
    return Flip.apply(a, _dims(dims, a.ndim, "flip"))


def roll(a: Tensor, shifts, dims=None) -> Tensor:
    """Shift the elements cyclically by ``shifts`` along ``dims`` (an int or a tuple, one
    shift each); without ``dims`` the tensor is rolled flattened and reshaped back."""
    if dims is None:
        if not isinstance(shifts, int):
            shifts = tuple(shifts)
            if len(shifts) != 1:
                raise ValueError(f"roll: without dims, give one shift, got shifts={shifts}")
            shifts = shifts[0]
        return Roll.apply(a, shifts, None)
    if isinstance(shifts, int) != isinstance(dims, int):
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if isinstance(shifts, int):
        return Roll.apply(a, shifts, _dim(dims, a.ndim, "roll"))
    shifts = tuple(shifts)
    axes = tuple(_dim(d, a.ndim, "roll") for d in dims)
    if len(shifts) != len(axes):
        raise ValueError(
            f"roll: shifts and dims must have the same length, got {len(shifts)} and {len(axes)}"
        )
    return Roll.apply(a, shifts, axes)


def repeat(a: Tensor, *sizes) -> Tensor:
    """Tile ``a``: dimension i repeated ``sizes[i]`` times (``a`` is first given leading
    dims of size 1 when ``sizes`` is longer). Made of expand and reshape: each dim n
    becomes a pair (r, n), broadcast along r, then merged into r * n."""
    sizes = _shape_args(sizes)
    if len(sizes) < a.ndim:
        raise ValueError(
            f"repeat: {len(sizes)} repeat sizes {sizes} for a tensor of shape {tuple(a.shape)}: "
            f"give at least one per dimension"
        )
    shape = (1,) * (len(sizes) - a.ndim) + tuple(a.shape)
    pairs = tuple(x for n in shape for x in (1, n))
    tiled = tuple(x for r, n in zip(sizes, shape) for x in (r, n))
    out = tuple(r * n for r, n in zip(sizes, shape))
    return Expand.apply(Reshape.apply(a, pairs), tiled).reshape(out)


def split(a: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces along ``dim``: of ``split_size_or_sections`` elements each (the last one
    smaller), or of the listed sizes (which must add up to the dimension)."""
    dim = _dim(dim, a.ndim, "split")
    n = a.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and n > 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, n - lo) for lo in range(0, n, step)] if n else [0]
    else:
        sizes = [int(k) for k in split_size_or_sections]
        if sum(sizes) != n or any(k < 0 for k in sizes):
            raise ValueError(
                f"split: sections {sizes} do not add up to the size {n} of dimension {dim} "
                f"of a tensor of shape {tuple(a.shape)}"
            )
    lead = (slice(None),) * dim
    bounds = [0, *itertools.accumulate(sizes)]
    return tuple(a[lead + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:]))


def chunk(a: Tensor, chunks: int, dim: int = 0) -> tuple:
    """At most ``chunks`` pieces along ``dim``, each of ceil(n / chunks) elements (the last
    one smaller; fewer pieces when they run out, as PyTorch)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = a.shape[_dim(dim, a.ndim, "chunk")]
    return split(a, max(-(-n // chunks), 1), dim)


def unbind(a: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, that dimension removed."""
    dim = _dim(dim, a.ndim, "unbind")
    lead = (slice(None),) * dim
    return tuple(a[lead + (i,)] for i in range(a.shape[dim]))
