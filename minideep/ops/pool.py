"""Pooling: max, average, adaptive average and adaptive max, for any number of
spatial dimensions.

Max and average pooling visit the windows one kernel offset at a time (see
``geometry.window_slices``): the slab ``x_pad[:, :, i::s, j::s]`` holds the element at
offset ``(i, j)`` of every window at once, so a 3x3 pool is 9 whole-array operations
and its backward 9 strided adds, never a Python loop over windows and never
``np.add.at``.

Ties in max pooling follow PyTorch: the gradient goes to the first maximal element of
the window in row-major order (offsets are visited in that order and only a strictly
larger value replaces the current maximum). The fast paths (max pooling on contiguous
copies of the slabs on the CPU, a CUDA kernel on the GPU; global average pooling as a
mean over each plane) are in ``fast/pool.py``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import fast
from ..autograd import Function
from ..backend import get_array_module
from ..geometry import crop_index, ntuple, output_shape, pad_spatial, window_slices
from ..tensor import Tensor
from .sampling import PlaneScatter


def _padded(x_shape, padding):
    return tuple(s + 2 * p for s, p in zip(x_shape[2:], padding))


def _index_dtype(volume: int):
    """The smallest integer type that numbers the offsets of a window of ``volume``."""
    return np.int8 if volume < 2**7 else np.int16 if volume < 2**15 else np.int32


class MaxPool(Function):
    """y[n, c, *p] = max over the window at p of x_pad (padding is -inf).

    x: (N, C, *S) -> y: (N, C, *out). dy flows to the first maximal element of each
    window (row-major); an element that is the maximum of several windows collects
    their sum. The offsets are visited in row-major order and only a strictly larger
    value replaces the current maximum, so ``argbest`` holds the first maximum.
    """

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation):
        out = output_shape(x.shape[2:], kernel, stride, padding, dilation)
        ctx.x_shape, ctx.geometry = x.shape, (kernel, stride, padding, dilation)
        # CPU: the same steps on contiguous copies of each slab; GPU: a kernel (fast/pool.py)
        ctx.fast = fast.pool.max_pool(x, kernel, stride, padding, dilation)
        if ctx.fast:
            return ctx.fast.forward(ctx, x, kernel, stride, padding, dilation, out)
        best, argbest = first_maxima(x, kernel, stride, padding, dilation, out)
        ctx.save_for_backward(argbest)
        return best

    @staticmethod
    def backward(ctx, grad):
        if ctx.fast and not ctx.create_graph:
            return ctx.fast.backward(ctx, grad), None, None, None, None
        if ctx.fast:  # a graph after the fast forward: the reference's argbest
            x = ctx.inputs[0].data
            argbest = first_maxima(x, *ctx.geometry, grad.shape[2:])[1]
        else:
            (argbest,) = ctx.saved_tensors
        dx = MaxRoute.run(grad, argbest, ctx.x_shape, *ctx.geometry)
        return dx, None, None, None, None


def first_maxima(x, kernel, stride, padding, dilation, out):
    """(best, argbest): the maximum of each window and the offset k of its first maximum."""
    xp = get_array_module(x)
    x_pad = pad_spatial(x, padding, -np.inf)
    best = argbest = None
    for k, (_, index) in enumerate(window_slices(kernel, stride, dilation, out)):
        slab = x_pad[index]
        if best is None:
            best = slab.copy()
            argbest = xp.zeros(best.shape, dtype=_index_dtype(math.prod(kernel)))
            continue
        better = slab > best  # strictly: an equal later value leaves the first maximum
        xp.maximum(best, slab, out=best)
        xp.copyto(argbest, k, where=better)
    return best, argbest


class MaxRoute(Function):
    """dx = each window's gradient sent to its first maximum (MaxPool's backward).

    Linear in the gradient, for fixed ``argbest``; its adjoint, :class:`MaxGather`,
    reads each window's maximum position back, so the pair is differentiable again."""

    @staticmethod
    def forward(ctx, grad, argbest, x_shape, kernel, stride, padding, dilation):
        xp = get_array_module(grad)
        ctx.save_for_backward(argbest)
        ctx.x_shape, ctx.geometry = x_shape, (kernel, stride, padding, dilation)
        dx = xp.zeros(x_shape[:2] + _padded(x_shape, padding), dtype=grad.dtype)
        for k, (_, index) in enumerate(window_slices(kernel, stride, dilation, grad.shape[2:])):
            dx[index] += grad * (argbest == k)
        return dx[crop_index(x_shape[2:], padding)]

    @staticmethod
    def backward(ctx, g):
        (argbest,) = ctx.saved_tensors
        return (
            MaxGather.run(g, argbest, ctx.x_shape, *ctx.geometry),
            None,
            None,
            None,
            None,
            None,
            None,
        )


class MaxGather(Function):
    """y = x at each window's recorded maximum position (the adjoint of MaxRoute)."""

    @staticmethod
    def forward(ctx, x, argbest, x_shape, kernel, stride, padding, dilation):
        ctx.save_for_backward(argbest)
        ctx.x_shape, ctx.geometry = x_shape, (kernel, stride, padding, dilation)
        x_pad = pad_spatial(x, padding)
        y = None
        for k, (_, index) in enumerate(window_slices(kernel, stride, dilation, argbest.shape[2:])):
            part = x_pad[index] * (argbest == k)
            y = part if y is None else y + part
        return y

    @staticmethod
    def backward(ctx, grad):
        (argbest,) = ctx.saved_tensors
        return (
            MaxRoute.run(grad, argbest, ctx.x_shape, *ctx.geometry),
            None,
            None,
            None,
            None,
            None,
            None,
        )


class AvgPool(Function):
    """y[n, c, *p] = (sum over the window at p of x_pad) / divisor.

    The divisor is the kernel volume K (``count_include_pad=True``, PyTorch's default:
    padded zeros count) or the number of real input elements in the window.
    dx_pad[window] += dy / divisor for every window.
    """

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, count_include_pad):
        xp = get_array_module(x)
        dilation = (1,) * len(kernel)
        out = output_shape(x.shape[2:], kernel, stride, padding, dilation)
        x_pad = pad_spatial(x, padding)
        slices = list(window_slices(kernel, stride, dilation, out))
        total = x_pad[slices[0][1]].copy()
        for _, index in slices[1:]:
            total += x_pad[index]
        if count_include_pad or not any(padding):
            divisor = math.prod(kernel)
        else:
            ones = pad_spatial(xp.ones((1, 1) + x.shape[2:], dtype=x.dtype), padding)
            divisor = sum(ones[index] for _, index in slices)
        ctx.divisor, ctx.x_shape = divisor, x.shape
        ctx.args = (kernel, stride, padding, count_include_pad)
        return total / divisor

    @staticmethod
    def backward(ctx, grad):
        return AvgSpread.run(grad, ctx.divisor, ctx.x_shape, *ctx.args), None, None, None, None


class AvgSpread(Function):
    """dx_pad[window] += dy / divisor for every window: AvgPool's backward. Linear, and
    its adjoint is AvgPool itself, so the pair is differentiable again."""

    @staticmethod
    def forward(ctx, grad, divisor, x_shape, kernel, stride, padding, count_include_pad):
        xp = get_array_module(grad)
        ctx.args = (kernel, stride, padding, count_include_pad)
        share = grad / divisor
        dx = xp.zeros(x_shape[:2] + _padded(x_shape, padding), dtype=grad.dtype)
        dilation = (1,) * len(kernel)
        for _, index in window_slices(kernel, stride, dilation, grad.shape[2:]):
            dx[index] += share
        return dx[crop_index(x_shape[2:], padding)]

    @staticmethod
    def backward(ctx, g):
        return AvgPool.run(g, *ctx.args), None, None, None, None, None, None


def _bins(n_in: int, n_out: int) -> list:
    """PyTorch's adaptive bins: bin i covers [floor(i n_in / n_out), ceil((i + 1) n_in / n_out))."""
    return [((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]


def _bin_matrix(xp, n_in: int, n_out: int, dtype):
    """(n_out, n_in) averaging matrix of PyTorch's adaptive bins (:func:`_bins`)."""
    a = np.zeros((n_out, n_in))
    for i, (start, end) in enumerate(_bins(n_in, n_out)):
        a[i, start:end] = 1.0 / (end - start)
    return xp.asarray(a.astype(dtype))


class AdaptiveAvgPool(Function):
    """y = x averaged over PyTorch's adaptive bins along each spatial axis.

    Averaging over bins is linear and separable, so along each axis it is a product
    with a bin matrix A (out, in): y = A_h x A_w^T in 2-d, and dx = A_h^T dy A_w.
    """

    @staticmethod
    def forward(ctx, x, out):
        xp = get_array_module(x)
        mats = [_bin_matrix(xp, n, o, x.dtype) for n, o in zip(x.shape[2:], out)]
        ctx.save_for_backward(*mats)
        ctx.x_shape = x.shape
        ctx.fast = fast.pool.global_average(x, out)  # CPU: a mean over each plane (fast/pool.py)
        if ctx.fast:
            return fast.pool.mean_over_planes(x)
        return _along_axes(xp, x, mats)

    @staticmethod
    def backward(ctx, grad):
        if ctx.fast and not ctx.create_graph:
            return fast.pool.spread_over_planes(grad, ctx.x_shape), None
        xp = get_array_module(grad)
        return _along_axes(xp, grad, [a.T for a in ctx.saved_tensors]), None


class AdaptiveMaxPool(Function):
    """y = the maximum of x over each of PyTorch's adaptive bins (:func:`_bins` on each
    axis), and its position.

    x: (N, C, *S) -> (y, indices): (N, C, *out), ``indices`` the flat position in the
    plane prod(S) of the first maximum of the bin (row-major, as PyTorch). Bins may
    overlap, so dx adds each dy at its maximum's position: a :class:`PlaneScatter`.
    """

    @staticmethod
    def forward(ctx, x, out):
        xp = get_array_module(x)
        n, c, *spatial = x.shape
        y = xp.empty((n, c) + out, dtype=x.dtype)
        indices = xp.empty((n, c) + out, dtype=np.int64)
        bins = [_bins(s, o) for s, o in zip(spatial, out)]
        steps = [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
        for position in itertools.product(*(range(o) for o in out)):
            edges = [axis_bins[p] for axis_bins, p in zip(bins, position)]
            window = x[(slice(None), slice(None)) + tuple(slice(a, b) for a, b in edges)]
            first = window.reshape(n, c, -1).argmax(axis=2)  # the first maximum
            local = xp.unravel_index(first, window.shape[2:])
            at = (slice(None), slice(None)) + position
            y[at] = xp.take_along_axis(window.reshape(n, c, -1), first[..., None], 2)[..., 0]
            indices[at] = sum((a + k) * st for (a, _), k, st in zip(edges, local, steps))
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        return y, indices

    @staticmethod
    def backward(ctx, grad, _):
        (indices,) = ctx.saved_tensors
        n, c = ctx.x_shape[:2]
        planes = math.prod(ctx.x_shape[2:])
        index = indices.reshape(n, c, -1)
        dx = PlaneScatter.run(grad.reshape(n, c, -1), index, planes)
        return dx.reshape(ctx.x_shape), None


def _along_axes(xp, x, mats):
    """Multiply spatial axis 2+i of ``x`` by ``mats[i]`` (shape (new, old))."""
    for i, a in enumerate(mats):
        axis = 2 + i
        x = xp.moveaxis(a @ xp.moveaxis(x, axis, -2), -2, axis)
    return x


# ---------------------------------------------------------------------------


def _pool_args(name, x: Tensor, kernel_size, stride, padding, spatial):
    if x.ndim != spatial + 2:
        raise ValueError(
            f"{name}: expected input (N, C, {', '.join('DHW'[-spatial:])}) with "
            f"{spatial + 2} dims, got {tuple(x.shape)}"
        )
    kernel = ntuple(kernel_size, spatial, "kernel_size")
    stride = kernel if stride is None else ntuple(stride, spatial, "stride")
    padding = ntuple(padding, spatial, "padding")
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: padding {padding} must be at most half of kernel_size {kernel}")
    return kernel, stride, padding


def _max_pool(name, x, kernel_size, stride, padding, dilation, spatial):
    kernel, stride, padding = _pool_args(name, x, kernel_size, stride, padding, spatial)
    return MaxPool.apply(x, kernel, stride, padding, ntuple(dilation, spatial, "dilation"))


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """x: (N, C, H, W) -> (N, C, H_out, W_out), the maximum of each window.
    ``stride`` defaults to ``kernel_size``; padding counts as -inf."""
    return _max_pool("max_pool2d", x, kernel_size, stride, padding, dilation, 2)


def max_pool3d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """x: (N, C, T, H, W) -> (N, C, T_out, H_out, W_out), the maximum of each window."""
    return _max_pool("max_pool3d", x, kernel_size, stride, padding, dilation, 3)


def _avg_pool(name, x, kernel_size, stride, padding, count_include_pad, spatial):
    kernel, stride, padding = _pool_args(name, x, kernel_size, stride, padding, spatial)
    return AvgPool.apply(x, kernel, stride, padding, count_include_pad)


def avg_pool2d(
    x: Tensor, kernel_size, stride=None, padding=0, count_include_pad: bool = True
) -> Tensor:
    """x: (N, C, H, W) -> (N, C, H_out, W_out), the mean of each window (padded zeros
    count unless ``count_include_pad=False``)."""
    return _avg_pool("avg_pool2d", x, kernel_size, stride, padding, count_include_pad, 2)


def avg_pool3d(
    x: Tensor, kernel_size, stride=None, padding=0, count_include_pad: bool = True
) -> Tensor:
    """x: (N, C, T, H, W) -> (N, C, T_out, H_out, W_out), the mean of each window."""
    return _avg_pool("avg_pool3d", x, kernel_size, stride, padding, count_include_pad, 3)


def _adaptive_size(name, x: Tensor, output_size, spatial):
    if x.ndim != spatial + 2:
        raise ValueError(f"{name}: expected an input with {spatial + 2} dims, got {tuple(x.shape)}")
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size,) * spatial
    out = tuple(n if o is None else int(o) for n, o in zip(x.shape[2:], output_size))
    if len(out) != spatial or min(out) < 1:
        raise ValueError(f"{name}: output_size must be {spatial} sizes >= 1, got {output_size}")
    return out


def _adaptive(name, x: Tensor, output_size, spatial):
    return AdaptiveAvgPool.apply(x, _adaptive_size(name, x, output_size, spatial))


def adaptive_avg_pool1d(x: Tensor, output_size) -> Tensor:
    """x: (N, C, L) -> (N, C, output_size), the mean over each of PyTorch's adaptive bins."""
    return _adaptive("adaptive_avg_pool1d", x, output_size, 1)


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """x: (N, C, H, W) -> (N, C, *output_size); ``output_size`` an int, a pair, or a pair
    with None (keep that size). ``output_size=1`` is global average pooling."""
    return _adaptive("adaptive_avg_pool2d", x, output_size, 2)


def adaptive_avg_pool3d(x: Tensor, output_size) -> Tensor:
    """x: (N, C, T, H, W) -> (N, C, *output_size), PyTorch's adaptive bins on each axis."""
    return _adaptive("adaptive_avg_pool3d", x, output_size, 3)


def _adaptive_max(name, x, output_size, return_indices, spatial):
    y, indices = AdaptiveMaxPool.apply(x, _adaptive_size(name, x, output_size, spatial))
    return (y, indices) if return_indices else y


def adaptive_max_pool1d(x: Tensor, output_size, return_indices: bool = False):
    """x: (N, C, L) -> (N, C, output_size), the maximum of each adaptive bin."""
    return _adaptive_max("adaptive_max_pool1d", x, output_size, return_indices, 1)


def adaptive_max_pool2d(x: Tensor, output_size, return_indices: bool = False):
    """x: (N, C, H, W) -> (N, C, *output_size), the maximum of each of PyTorch's adaptive
    bins; with ``return_indices`` also the int64 flat position (in H*W) of each maximum."""
    return _adaptive_max("adaptive_max_pool2d", x, output_size, return_indices, 2)


def adaptive_max_pool3d(x: Tensor, output_size, return_indices: bool = False):
    """x: (N, C, T, H, W) -> (N, C, *output_size), the maximum of each adaptive bin."""
    return _adaptive_max("adaptive_max_pool3d", x, output_size, return_indices, 3)
