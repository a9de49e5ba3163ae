"""Fast paths of the convolutions (reference: ``ops/conv.py`` and ``geometry.py``).

The reference convolution is im2col, one matrix product and col2im. On the CPU,
:class:`FoldedBiasConvolution` computes the same thing with three savings:

* im2col and col2im run one cache-sized chunk of the batch at a time, into memory from
  the CPU pool (:class:`ChunkedPatches`);
* the bias rides in the products: the weights get ``b`` as one more column and ``cols``
  a row of ones, so ``y = [W2 b] @ [cols; 1]`` and the last column of ``dW2`` is ``db``,
  which saves a pass over ``y`` forward and over ``dy`` backward (the sums are rounded
  in another order, so results agree with the reference to rounding);
* for stride 1, the input gradient's col2im runs on the padded grid (:class:`PaddedGrid`),
  where each kernel offset adds one contiguous run instead of a strided slab.

On the GPU, im2col and col2im of 2-d convolutions (and transposed convolutions) are
CUDA kernels (:class:`CudaPatches`, ``kernels/conv.py``). What each saves:
``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import geometry, kernels
from ..geometry import crop_index, output_shape, pad_spatial, window_slices, windows
from .memory import empty, for_each_chunk, zeros
from .switch import enabled


def convolution(x):
    """The fast path of ``ops.conv.Convolution`` for ``x``, or None for the reference."""
    if enabled() and isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return FoldedBiasConvolution
    return None


def patches(x, kernel: tuple):
    """A faster im2col/col2im pair for ``x`` (same signatures as ``geometry``'s), or None.

    On the GPU only: on the CPU the chunked pair alone, without the folded bias, made
    the transposed convolution slower, not faster (``benchmarks/results/fast_paths.md``).
    """
    if enabled() and x.dtype.kind == "f" and len(kernel) == 2 and kernels.active(x):
        return CudaPatches
    return None


class ChunkedPatches:
    """``geometry.im2col``/``col2im`` on the CPU, one chunk of the batch at a time, into
    pooled memory; ``ones_row`` adds a row of ones under the windows (for a bias)."""

    @staticmethod
    def im2col(x, kernel, stride, padding, dilation, ones_row=False):
        out = output_shape(x.shape[2:], kernel, stride, padding, dilation)
        view = windows(pad_spatial(x, padding), kernel, stride, dilation, out)
        rows = x.shape[1] * math.prod(kernel)
        cols = empty((x.shape[0], rows + ones_row, math.prod(out)), x.dtype)
        windows_part = cols[:, :rows].reshape(view.shape)  # a view: it splits the row axis
        for_each_chunk(lambda i: np.copyto(windows_part[i], view[i]), cols)
        if ones_row:
            cols[:, rows] = 1
        return cols, out

    @staticmethod
    def col2im(cols, x_shape, kernel, stride, padding, dilation):
        n, c, *spatial = x_shape
        out = output_shape(tuple(spatial), kernel, stride, padding, dilation)
        cols = cols.reshape((n, c) + kernel + out)
        dx = zeros((n, c) + tuple(s + 2 * p for s, p in zip(spatial, padding)), cols.dtype)
        slices = list(window_slices(kernel, stride, dilation, out))

        def add_columns(i):  # one chunk of the batch
            for offset, index in slices:
                dx[i][index] += cols[i][(slice(None), slice(None)) + offset]

        for_each_chunk(add_columns, dx)
        return dx[crop_index(tuple(spatial), padding)] if any(padding) else dx


class CudaPatches:
    """im2col/col2im of a 2-d convolution as CUDA kernels (``kernels/conv.py``)."""

    @staticmethod
    def im2col(x, kernel, stride, padding, dilation):
        out = output_shape(x.shape[2:], kernel, stride, padding, dilation)
        if not kernels.active(x, x.shape[0] * x.shape[1] * math.prod(kernel) * math.prod(out)):
            return geometry.im2col(x, kernel, stride, padding, dilation)
        from ..kernels.conv import im2col_2d

        return im2col_2d(x, kernel, stride, padding, dilation, out), out

    @staticmethod
    def col2im(cols, x_shape, kernel, stride, padding, dilation):
        from ..kernels.conv import col2im_2d

        out = output_shape(tuple(x_shape[2:]), kernel, stride, padding, dilation)
        return col2im_2d(cols, x_shape, kernel, stride, padding, dilation, out)


def _product(a, b, shape):
    """``a @ b`` (of ``shape``, batch dims first), into memory from the CPU pool."""
    shape = tuple(shape[:-1]) + (b.shape[-1],)
    return np.matmul(a, b, out=empty(shape, b.dtype))


class FoldedBiasConvolution:
    """``ops.conv.Convolution`` on the CPU: chunked im2col, the bias in the product, and
    for stride 1 the input gradient's col2im on the padded grid."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation):
        kernel = w.shape[2:]
        w2 = w.reshape(w.shape[0], -1)
        folded = b is not None
        cols, out = ChunkedPatches.im2col(x, kernel, stride, padding, dilation, folded)
        w_cols = np.concatenate([w2, b[:, None]], axis=1) if folded else w2
        y = _product(w_cols, cols, (x.shape[0], w.shape[0], -1))
        ctx.save_for_backward(cols, w)
        ctx.x_shape, ctx.geometry, ctx.folded = x.shape, (kernel, stride, padding, dilation), folded
        return y.reshape((x.shape[0], w.shape[0]) + out)

    @staticmethod
    def backward(ctx, grad):
        cols, w = ctx.saved_tensors
        kernel, stride, padding, dilation = ctx.geometry
        w2 = w.reshape(w.shape[0], -1)
        rows = w2.shape[1]
        dy = grad.reshape(grad.shape[0], grad.shape[1], -1)  # (N, C_out, L)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            if all(s == 1 for s in stride):
                grid = PaddedGrid(ctx.x_shape, kernel, padding, dilation)
                dcols = _product(w2.T, grid.uncrop(grad), (grad.shape[0], rows, -1))
                dx = grid.col2im(dcols)
            else:
                dcols = _product(w2.T, dy, (grad.shape[0], rows, -1))
                dx = ChunkedPatches.col2im(dcols, ctx.x_shape, *ctx.geometry)
            del dcols  # (pooled memory, free again for dW's product)
        if ctx.needs_input_grad[1]:
            dw_cols = np.matmul(dy, cols.transpose(0, 2, 1)).sum(axis=0)
            dw = dw_cols[:, :rows].reshape(w.shape)
            if ctx.folded:
                db = dw_cols[:, rows].copy()
        if ctx.needs_input_grad[2] and db is None:
            db = dy.sum(axis=2).sum(axis=0)
        return dx, dw, db, None, None, None


class PaddedGrid:
    """col2im of a stride-1 convolution, computed on the padded grid.

    Flatten the padded input of each channel into one row of numbers. For stride 1, the
    window of output position ``p`` starts at flat index ``q(p) = sum_i p_i P_i`` (``P``
    the padded array's strides in elements), and kernel offset ``kk`` reads ``q(p) +
    off(kk)`` with ``off(kk) = sum_i kk_i d_i P_i``. So if the gradient also holds zeros
    at the few extra positions ``q`` that fall in the padding (``p_i >= out_i`` for
    i > 0, :meth:`uncrop`), every kernel offset adds one *contiguous* run of the flat
    input gradient (:meth:`col2im`) instead of a strided slab. The price is the extra
    columns, ``P_0 / prod(out[1:])`` of them (3% for 64x64 frames padded by 1).
    """

    def __init__(self, x_shape: tuple, kernel: tuple, padding: tuple, dilation: tuple):
        self.batch, self.channels, *spatial = x_shape
        self.spatial, self.padding = tuple(spatial), padding
        self.padded = tuple(s + 2 * p for s, p in zip(spatial, padding))
        self.out = output_shape(self.spatial, kernel, (1,) * len(kernel), padding, dilation)
        steps = [1]
        for n in self.padded[:0:-1]:
            steps.insert(0, steps[0] * n)
        self.length = self.out[0] * steps[0]  # columns: whole padded slabs of axis 0
        self.offsets = [
            sum(k * d * st for k, d, st in zip(kk, dilation, steps))
            for kk in itertools.product(*(range(k) for k in kernel))
        ]
        self.size = self.offsets[-1] + self.length  # flat length every offset can reach

    def uncrop(self, grad):
        """``grad (N, C_out, *out)`` on the grid ``(N, C_out, length)``, zero at the extra
        positions."""
        dy = empty(grad.shape[:2] + (self.length,), grad.dtype)
        on_grid = dy.reshape(grad.shape[:2] + self.out[:1] + self.padded[1:])
        valid = (slice(None), slice(None)) + tuple(slice(0, o) for o in self.out)

        def fill(i):  # one chunk of the batch
            for axis, (o, n) in enumerate(zip(self.out[1:], self.padded[1:]), start=3):
                if o < n:
                    on_grid[i][(slice(None),) * axis + (slice(o, None),)] = 0
            on_grid[i][valid] = grad[i]

        for_each_chunk(fill, dy)
        return dy

    def col2im(self, dcols):
        """``dcols (N, C*K, length) -> dx (N, C, *S)``: one contiguous add per offset."""
        dflat = empty((self.batch, self.channels, self.size), dcols.dtype)
        d = dcols.reshape(self.batch, self.channels, len(self.offsets), self.length)

        def add_runs(i):  # one chunk of the batch; the first offset is 0: copy, not add
            dflat[i][:, :, : self.length] = d[i][:, :, 0]
            dflat[i][:, :, self.length :] = 0
            for k, off in enumerate(self.offsets[1:], start=1):
                dflat[i][:, :, off : off + self.length] += d[i][:, :, k]

        for_each_chunk(add_runs, dflat)
        body = dflat[:, :, : math.prod(self.padded)].reshape(dflat.shape[:2] + self.padded)
        return body[crop_index(self.spatial, self.padding)]
