"""Fast paths of max pooling (reference: ``ops/pool.py``, ``MaxPool``).

The reference pads with -inf, visits the kernel offsets in row-major order and keeps,
for every window, the largest value and the offset where it was first seen (a later
offset wins only if strictly larger: the first maximum, PyTorch's rule).

* :class:`TiledMaxPool` (CPU): when the windows tile the input (stride = kernel, no
  padding, no dilation), every element belongs to one window at most, so no offsets
  need keeping: the forward is whole-array maxima one chunk of the batch at a time, and
  the backward finds each window's first maximum again by comparing with the result.
* :class:`CudaMaxPool` (GPU, 2-d): one CUDA thread per element (``kernels/pool.py``).

What each saves: ``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..geometry import window_slices
from .memory import empty, for_each_chunk, zeros
from .switch import enabled


def max_pool(x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """The fast path of ``ops.pool.MaxPool`` for ``x`` and this geometry, or None."""
    if not enabled() or x.dtype.kind != "f":
        return None
    no_dilation = dilation == (1,) * len(kernel)
    if isinstance(x, np.ndarray):
        if stride == kernel and not any(padding) and no_dilation:
            return TiledMaxPool
        return None
    if len(kernel) == 2 and no_dilation and kernels.active(x):
        return CudaMaxPool
    return None


class TiledMaxPool:
    """Max pooling over windows that tile the input, on the CPU."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, out):
        slices = [index for _, index in window_slices(kernel, stride, dilation, out)]
        best = empty(x.shape[:2] + out, x.dtype)
        others = slices[1:] or slices  # (a 1x1 window: x is the max of x and x)

        def pool(i):  # one chunk of the batch
            np.maximum(x[i][slices[0]], x[i][others[0]], out=best[i])
            for index in others[1:]:
                np.maximum(best[i], x[i][index], out=best[i])

        for_each_chunk(pool, x)
        ctx.save_for_backward(x, best)
        ctx.slices = slices
        return best

    @staticmethod
    def backward(ctx, grad):
        # Each element belongs to at most one window, so each slab of dx is written once.
        # `taken` marks the windows whose maximum an earlier offset already had, so only
        # the first maximal element (row-major) gets the gradient, as in the reference.
        x, best = ctx.saved_tensors
        out = best.shape[2:]
        kernel = ctx.geometry[0]
        exact = all(o * k == n for o, k, n in zip(out, kernel, x.shape[2:]))
        dx = (empty if exact else zeros)(x.shape, grad.dtype)
        slices = ctx.slices

        def route(i):  # one chunk of the batch
            taken = None
            for k, index in enumerate(slices):
                hit = x[i][index] == best[i]
                if taken is None:
                    taken = hit
                else:
                    np.greater(hit, taken, out=hit)  # hit and not taken
                    if k < len(slices) - 1:
                        taken |= hit
                np.multiply(grad[i], hit, out=dx[i][index])

        for_each_chunk(route, x)
        return dx


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
