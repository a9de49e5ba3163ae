"""Fast paths of pooling (reference: ``ops/pool.py``, ``MaxPool`` and ``AdaptiveAvgPool``).

The reference max pool pads with -inf, visits the kernel offsets in row-major order and
keeps, for every window, the largest value and the offset ``k`` where it was first seen
(a later offset wins only if strictly larger: the first maximum, PyTorch's rule). Each
offset's slab ``x_pad[..., i::s, j::s]`` is a strided view, and NumPy's comparisons and
masked copies are several times slower on a stride-2 inner loop than on a contiguous one.

* :class:`SlabMaxPool` (CPU, any geometry): the reference's own steps, one cache-sized
  chunk of the N*C planes at a time (so a batch of one is chunked too): each slab is
  first copied into a small contiguous buffer (one strided pass, the cheapest there
  is), then compared, maximised and its offset recorded as a ``uint8`` code, all on
  contiguous memory. Same comparisons in the same order, so the same maxima and codes
  as the reference, NaN included. The backward sends ``grad * (code == k)`` to each
  offset's slab: written once where the windows are disjoint, added in offset order (as
  the reference) where they overlap: one compare and one multiply per offset, from the
  code alone (x is not kept). Same values as the reference (a zero may carry the other
  sign). Inputs under 64 KB skip the copies. When a graph of
  the gradient is built, ``ops/pool.py`` takes the reference's backward.
* :func:`mean_over_planes` (CPU): adaptive average pooling to one value per plane (a
  global average pool) is a mean over each contiguous plane, not two matrix products
  (equal to rounding: the sum runs in another order); its backward multiplies by the
  reference's rounded 1/n factors, so dx is the reference's to the bit.
* :class:`CudaMaxPool` (GPU, 2-d): one CUDA thread per element (``kernels/pool.py``).

What each saves: ``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import kernels
from ..geometry import window_slices
from .memory import chunk_rows, empty, for_each_chunk
from .switch import enabled

_SMALL_BYTES = 1 << 16  # below this, a max pool takes fewer, slower-per-element calls


def max_pool(x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """The fast path of ``ops.pool.MaxPool`` for ``x`` and this geometry, or None."""
    if not enabled() or x.dtype.kind != "f":
        return None
    if isinstance(x, np.ndarray):
        return SlabMaxPool
    if len(kernel) == 2 and dilation == (1, 1) and kernels.active(x):
        return CudaMaxPool
    return None


def _planes(a):
    """``a`` (N, C, *S) as (N*C, 1, *S) when that is a view, so that chunks split planes
    (a batch of one is chunked too); otherwise ``a`` itself."""
    if a.flags.c_contiguous:
        return a.reshape((-1, 1) + a.shape[2:])
    return a


@functools.lru_cache(maxsize=256)
def _plan(spatial, kernel, stride, padding, dilation, out):
    """What one geometry needs, kept: building it costs more than pooling a small input.

    (the index of every offset's slab, the padded spatial shape, the index of its
    interior, whether the windows are disjoint (no element in two of them) and whether
    they tile the input (and every element is in one))."""
    slices = tuple(index for _, index in window_slices(kernel, stride, dilation, out))
    padded = tuple(n + 2 * p for n, p in zip(spatial, padding))
    interior = (slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(padding, spatial))
    disjoint = all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))
    tiled = not any(padding) and all(
        d == 1 and s == k and o * k == n
        for k, s, d, o, n in zip(kernel, stride, dilation, out, spatial)
    )
    return slices, padded, interior, disjoint, tiled


class SlabMaxPool:
    """Max pooling on the CPU, the reference's steps on contiguous copies of each slab."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, out):
        planes = _planes(x)
        ctx.plan = _plan(x.shape[2:], kernel, stride, padding, dilation, out)
        slices, padded_shape, inner = ctx.plan[:3]
        code_dtype = np.uint8 if len(slices) <= 256 else np.int32
        best = empty(planes.shape[:2] + out, x.dtype)
        code = empty(planes.shape[:2] + out, code_dtype)
        rows = chunk_rows(planes)
        small = planes.nbytes <= _SMALL_BYTES  # few elements: fewer calls matter more
        copy_slabs = stride[-1] != 1 and not small  # a unit-stride slab is read as it is
        slab = np.empty((rows,) + best.shape[1:], x.dtype) if copy_slabs else None
        better = np.empty((rows,) + best.shape[1:], bool)
        k_code = None if small else np.empty(better.shape, code_dtype)
        padded = any(padding)
        if padded:  # a chunk padded with -inf; the border is never written
            x_pad = np.full((rows, planes.shape[1]) + padded_shape, -np.inf, x.dtype)

        def pool(i):  # one chunk of the planes
            xi = planes[i]
            n = len(xi)
            if padded:
                xi_pad = x_pad[:n]
                xi_pad[inner] = xi
            else:
                xi_pad = xi
            b, c, up = best[i], code[i], better[:n]
            np.copyto(b, xi_pad[slices[0]])
            c.fill(0)
            for k, index in enumerate(slices[1:], 1):
                s = xi_pad[index]
                if copy_slabs:
                    np.copyto(slab[:n], s)
                    s = slab[:n]
                np.greater(s, b, out=up)  # strictly: an equal later value leaves the first
                np.maximum(b, s, out=b)
                if small:
                    np.copyto(c, k, where=up)
                else:  # the same: k exceeds every code so far, so code = max(code, k * up),
                    # two quick passes where copyto(..., where=) is ~20x slower per element
                    np.multiply(up.view(np.uint8) if code_dtype == np.uint8 else up, k,
                                out=k_code[:n])  # fmt: skip
                    np.maximum(c, k_code[:n], out=c)

        for_each_chunk(pool, planes)
        ctx.save_for_backward(code)
        return best.reshape(x.shape[:2] + out)

    @staticmethod
    def backward(ctx, grad):
        (code,) = ctx.saved_tensors
        slices, padded_shape, inner, disjoint, tiled = ctx.plan
        g_planes = grad.reshape(code.shape)
        dx = empty(code.shape[:2] + ctx.x_shape[2:], grad.dtype)
        rows = chunk_rows(dx)
        hit = np.empty((rows,) + code.shape[1:], bool)
        if not disjoint:
            t = np.empty(hit.shape, grad.dtype)
        padded = padded_shape != ctx.x_shape[2:]
        if padded:
            dx_pad = np.empty((rows, code.shape[1]) + padded_shape, grad.dtype)

        def route(i):  # one chunk of the planes
            g, c = g_planes[i], code[i]
            n = len(g)
            h = hit[:n]
            target = dx_pad[:n] if padded else dx[i]
            if not tiled:
                target.fill(0)
            for k, index in enumerate(slices):
                np.equal(c, k, out=h)
                if disjoint:  # each element is in one window at most: written once
                    np.multiply(g, h, out=target[index])
                else:  # shared elements collect their windows' sum, in offset order
                    np.multiply(g, h, out=t[:n])
                    view = target[index]
                    np.add(view, t[:n], out=view)
            if padded:
                np.copyto(dx[i], target[inner])

        for_each_chunk(route, dx)
        return dx.reshape(ctx.x_shape)


def global_average(x, out: tuple) -> bool:
    """Whether ``ops.pool.AdaptiveAvgPool`` of ``x`` to ``out`` is a mean over each plane
    (every output size 1) on the CPU, fast paths on."""
    return (
        enabled() and isinstance(x, np.ndarray) and x.dtype.kind == "f" and all(o == 1 for o in out)
    )


def mean_over_planes(x):
    """y[n, c, 1, ...] = the mean of plane x[n, c]: one contiguous reduction."""
    planes = x.reshape(x.shape[:2] + (math.prod(x.shape[2:]),))
    y = np.add.reduce(planes, axis=2)
    y /= planes.shape[2]
    return y.reshape(x.shape[:2] + (1,) * (x.ndim - 2))


def spread_over_planes(grad, x_shape):
    """dx[n, c, ...] = grad[n, c] times 1/n of each spatial axis: the adjoint of
    :func:`mean_over_planes`. The factors are rounded, and applied axis after axis, as
    the reference's bin matrices do, so dx is the reference's to the bit."""
    share = grad.reshape(grad.shape[:2] + (1,))
    for n in x_shape[2:]:
        share = share * grad.dtype.type(1.0 / n)
    dx = empty(x_shape[:2] + (math.prod(x_shape[2:]),), grad.dtype)
    np.copyto(dx, share)
    return dx.reshape(x_shape)


class CudaMaxPool:
    """2-d max pooling as CUDA kernels: forward with the argmax, backward without atomics."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, out):
        from ..kernels.pool import max_pool_2d_forward

        y, argbest = max_pool_2d_forward(x, kernel, stride, padding, out)
        ctx.save_for_backward(argbest)
        return y

    @staticmethod
    def backward(ctx, grad):
        from ..kernels.pool import max_pool_2d_backward

        (argbest,) = ctx.saved_tensors
        kernel, stride, padding, _ = ctx.geometry
        return max_pool_2d_backward(
            grad, argbest, ctx.x_shape, kernel, stride, padding, grad.shape[2:]
        )
