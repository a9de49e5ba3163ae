"""Convolutions as one matrix product: im2col, a GEMM, and col2im for the backward.

A convolution with kernel ``k`` slides a window over the (zero-padded) input and takes a
dot product of each window with each filter. Writing every window as one column of a
matrix (*im2col*) turns the whole layer into a single matrix product::

    cols[n, (c, *kk), p] = x_pad[n, c, *(p * stride + kk * dilation)]   (N, C*K, L)
    y[n]                 = W2 @ cols[n]                                 (N, C_out, L)

with ``W2 = w.reshape(C_out, C*K)``, ``K`` the kernel volume and ``L`` the number of
output positions. The windows are read through a strided *view* of the padded input (no
copying, see :func:`windows`); one contiguous copy of that view is the only extra memory.

Backward is the same picture read the other way:

* ``dW2 = sum_n dy[n] @ cols[n].T``  (one batched matrix product);
* ``dcols = W2.T @ dy``, and ``dx = col2im(dcols)``: every window adds its column back
  where it came from. :func:`col2im` loops over the kernel offsets (``K`` iterations),
  each adding one strided slab, so overlapping windows sum without ``np.add.at``.

A transposed convolution is the adjoint of a convolution: its forward is the input
gradient of a convolution and its backward is a convolution's forward.

Everything is written for any number of spatial dimensions, so ``conv2d`` (images) and
``conv3d`` (video clips ``(N, C, T, H, W)``) share the code, and so does pooling
(``ops/pool.py``). Arrays go through their own module (numpy or cupy).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import kernels
from ..autograd import Function
from ..backend import as_strided, empty, for_each_chunk, get_array_module, zeros
from ..tensor import Tensor


def ntuple(value, n: int, name: str) -> tuple:
    """``3 -> (3, 3)``; a sequence must have ``n`` entries."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or {n} ints, got {value}")
    return value


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Number of window positions along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_fits(out: tuple, kernel: tuple, dilation: tuple, spatial: tuple, padding: tuple):
    if min(out) < 1:
        raise ValueError(
            f"kernel {kernel} (dilation {dilation}) does not fit in input of spatial size "
            f"{spatial} padded by {padding}"
        )


def pad_spatial(x, padding: tuple, value: float = 0.0):
    """``x: (N, C, *S)`` with ``padding[i]`` entries of ``value`` on both sides of axis 2+i."""
    if not any(padding):
        return x
    xp = get_array_module(x)
    shape = x.shape[:2] + tuple(s + 2 * p for s, p in zip(x.shape[2:], padding))
    out = xp.full(shape, value, dtype=x.dtype) if value else xp.zeros(shape, dtype=x.dtype)
    out[crop_index(x.shape[2:], padding)] = x
    return out


def crop_index(spatial: tuple, padding: tuple) -> tuple:
    """The index that takes the unpadded interior out of a padded array."""
    return (slice(None), slice(None)) + tuple(slice(p, p + s) for s, p in zip(spatial, padding))


def windows(x_pad, kernel: tuple, stride: tuple, dilation: tuple, out: tuple):
    """A strided view ``(N, C, *kernel, *out)`` of every window of ``x_pad`` (no copy).

    ``view[n, c, *kk, *p] = x_pad[n, c, *(p * stride + kk * dilation)]``.
    """
    n_c = x_pad.strides[:2]
    axis_strides = x_pad.strides[2:]
    strides = (
        n_c
        + tuple(st * d for st, d in zip(axis_strides, dilation))
        + tuple(st * s for st, s in zip(axis_strides, stride))
    )
    return as_strided(x_pad, x_pad.shape[:2] + kernel + out, strides)


def window_slices(kernel: tuple, stride: tuple, dilation: tuple, out: tuple):
    """Yield ``(offset, index)`` for every kernel offset: ``x_pad[index]`` is the
    ``(N, C, *out)`` slab of input elements that offset sees in all windows at once."""
    for offset in itertools.product(*(range(k) for k in kernel)):
        index = (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s)
            for o, s, d, n in zip(offset, stride, dilation, out)
        )
        yield offset, index


def im2col(x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple, ones_row=False):
    """``x: (N, C, *S) -> cols: (N, C*K, L)`` and the output spatial shape ``out``.

    ``K = prod(kernel)``, ``L = prod(out)``; column ``p`` of ``cols[n]`` is the window at
    output position ``p``, flattened in ``(c, *kernel)`` order like a weight's last dims.
    ``ones_row`` (CPU): one more row of ones at the end, ``(N, C*K + 1, L)``, for a bias.
    """
    xp = get_array_module(x)
    out = tuple(output_size(*a) for a in zip(x.shape[2:], kernel, stride, padding, dilation))
    _check_fits(out, kernel, dilation, tuple(x.shape[2:]), padding)
    n_cols = x.shape[0] * x.shape[1] * math.prod(kernel) * math.prod(out)
    if len(kernel) == 2 and kernels.active(x, n_cols):  # one CUDA thread per column element
        from ..kernels.conv import im2col_2d

        return im2col_2d(x, kernel, stride, padding, dilation, out), out
    view = windows(pad_spatial(x, padding), kernel, stride, dilation, out)
    rows = x.shape[1] * math.prod(kernel)
    cols = empty((x.shape[0], rows + ones_row, math.prod(out)), x.dtype, xp)
    windows_part = cols[:, :rows].reshape(view.shape)  # a view: it splits the row axis
    for_each_chunk(lambda i: xp.copyto(windows_part[i], view[i]), cols)
    if ones_row:
        cols[:, rows] = 1
    return cols, out


def col2im(cols, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """The adjoint of :func:`im2col`: ``cols: (N, C*K, L) -> (N, C, *S)``.

    Each column is added back onto the input positions of its window; positions shared
    by overlapping windows receive the sum. One strided add per kernel offset.
    """
    xp = get_array_module(cols)
    n, c, *spatial = x_shape
    out = tuple(output_size(*a) for a in zip(spatial, kernel, stride, padding, dilation))
    if len(kernel) == 2 and kernels.active(cols):  # a gather per input pixel, no atomics
        from ..kernels.conv import col2im_2d

        return col2im_2d(cols, x_shape, kernel, stride, padding, dilation, out)
    cols = cols.reshape((n, c) + kernel + out)
    padded = (n, c) + tuple(s + 2 * p for s, p in zip(spatial, padding))
    dx = zeros(padded, cols.dtype, xp)
    slices = list(window_slices(kernel, stride, dilation, out))

    def add_columns(i):  # one chunk of the batch
        for offset, index in slices:
            dx[i][index] += cols[i][(slice(None), slice(None)) + offset]

    for_each_chunk(add_columns, dx)
    return dx[crop_index(tuple(spatial), padding)] if any(padding) else dx


class Grid:
    """A stride-1 convolution on the CPU, computed on the padded grid.

    Flatten the padded input of each channel into one row of numbers. For stride 1, the
    window of output position ``p`` starts at flat index ``q(p) = sum_i p_i P_i`` (``P``
    the padded array's strides in elements), and kernel offset ``kk`` reads ``q(p) +
    off(kk)`` with ``off(kk) = sum_i kk_i d_i P_i``. So if we also compute outputs at the
    few extra positions ``q`` that fall in the padding (``p_i >= out_i`` for i > 0),
    every kernel offset reads one *contiguous* run of the flat input::

        cols[n, (c, kk), q] = x_flat[n, c, q + off(kk)]        q = 0 .. out_0 * P_0 - 1

    and col2im adds one contiguous run per offset. NumPy then copies and adds whole
    rows of thousands of elements instead of rows of ``W``: on (32, 16, 64, 64) ->
    32, 3x3, col2im takes 25 -> 14 ms and im2col 13 -> 11 ms, the layer's forward and
    backward 112 -> 104 ms (2-core CPU, where the three GEMMs take 70 ms). The price is
    the extra columns (``P_0 / prod(out[1:])`` of them, 3% for 64x64 frames padded by
    1), a crop of the output, and zeros in the gradient at the cropped positions so that
    they add nothing in backward.
    """

    def __init__(self, x_shape: tuple, kernel: tuple, padding: tuple, dilation: tuple):
        self.batch, self.channels, *spatial = x_shape
        self.spatial, self.padding = tuple(spatial), padding
        self.padded = tuple(s + 2 * p for s, p in zip(spatial, padding))
        self.out = tuple(
            output_size(n, k, 1, p, d) for n, k, p, d in zip(spatial, kernel, padding, dilation)
        )
        _check_fits(self.out, kernel, dilation, self.spatial, padding)
        steps = [1]
        for n in self.padded[:0:-1]:
            steps.insert(0, steps[0] * n)
        self.kernel, self.dilation, self.steps = kernel, dilation, tuple(steps)
        self.length = self.out[0] * steps[0]  # columns: whole padded slabs of axis 0
        self.offsets = [
            sum(k * d * st for k, d, st in zip(kk, dilation, steps))
            for kk in itertools.product(*(range(k) for k in kernel))
        ]
        self.size = self.offsets[-1] + self.length  # flat length every offset can read

    def _body(self, flat):
        """The ``(N, C, *padded)`` array at the start of each flat row."""
        return flat[:, :, : math.prod(self.padded)].reshape(flat.shape[:2] + self.padded)

    def _on_grid(self, a):
        """``(N, C, length) -> (N, C, out_0, *padded[1:])``: the grid's positions."""
        return a.reshape(a.shape[:2] + self.out[:1] + self.padded[1:])

    def _valid(self):
        """Index of the real output positions within :meth:`_on_grid`."""
        return (slice(None), slice(None)) + tuple(slice(0, o) for o in self.out)

    def im2col(self, x, ones_row=False):
        """``x: (N, C, *S) -> cols: (N, C*K [+ 1], length)``, as :func:`im2col`."""
        flat = empty((self.batch, self.channels, self.size), x.dtype)
        rows = self.channels * len(self.offsets)
        cols = empty((self.batch, rows + ones_row, self.length), x.dtype)
        item = x.itemsize
        view = as_strided(
            flat,
            flat.shape[:2] + self.kernel + (self.length,),
            flat.strides[:2] + tuple(d * st * item for d, st in zip(self.dilation, self.steps))
            + (item,),
        )  # fmt: skip
        cols_view = cols[:, :rows].reshape(view.shape)

        def fill(i):  # one chunk of the batch: pad it, then copy its K shifted runs
            body = self._body(flat[i])
            for axis, p in enumerate(self.padding, start=2):  # zero the border and tail
                if p:
                    body[(slice(None),) * axis + (slice(0, p),)] = 0
                    body[(slice(None),) * axis + (slice(-p, None),)] = 0
            flat[i][:, :, math.prod(self.padded) :] = 0
            body[crop_index(self.spatial, self.padding)] = x[i]
            np.copyto(cols_view[i], view[i])

        for_each_chunk(fill, cols)
        if ones_row:
            cols[:, rows] = 1
        return cols

    def crop(self, y_grid):
        """The real outputs of ``y_grid (N, C_out, length)``, a new ``(N, C_out, *out)``."""
        valid = self._on_grid(y_grid)[self._valid()]
        y = empty(valid.shape, y_grid.dtype)
        for_each_chunk(lambda i: np.copyto(y[i], valid[i]), y)
        return y

    def uncrop(self, grad):
        """``grad (N, C_out, *out)`` on the grid, zero at the extra positions."""
        dy = empty(grad.shape[:2] + (self.length,), grad.dtype)
        on_grid = self._on_grid(dy)

        def fill(i):  # one chunk of the batch
            for axis, (o, n) in enumerate(zip(self.out[1:], self.padded[1:]), start=3):
                if o < n:
                    on_grid[i][(slice(None),) * axis + (slice(o, None),)] = 0
            on_grid[i][self._valid()] = grad[i]

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
        return self._body(dflat)[crop_index(self.spatial, self.padding)]


def _product(a, b, shape):
    """``a @ b`` (of ``shape``, batch dims first), into memory from the CPU pool."""
    if not isinstance(b, np.ndarray):
        return a @ b
    shape = tuple(shape[:-1]) + (b.shape[-1],)
    return np.matmul(a, b, out=empty(shape, b.dtype))


def _add_bias(y, b):
    if b is not None:
        y += b.reshape((-1,) + (1,) * (y.ndim - 2))
    return y


def _bias_grad(grad):
    # Positions first, then the batch: each sum runs over a contiguous block. On a GPU
    # that is 0.9 -> 0.1 ms for a (256, 16, 64, 64) gradient against sum(axis=(0, 2, 3)).
    return grad.reshape(grad.shape[0], grad.shape[1], -1).sum(axis=2).sum(axis=0)


class Convolution(Function):
    """y[n, o, *p] = b[o] + sum_{c, kk} w[o, c, *kk] * x_pad[n, c, *(p * s + kk * d)].

    x: (N, C_in, *S), w: (C_out, C_in, *kernel), b: (C_out,) or None
    -> y: (N, C_out, *out).  With cols = im2col(x) and W2 = w.reshape(C_out, -1):
    y = W2 @ cols;  dW2 = sum_n dy[n] @ cols[n].T;  dx = col2im(W2.T @ dy);
    db = dy summed over the batch and every output position.
    On the CPU, a stride-1 layer whose input wants a gradient computes the same products
    on the padded grid (:class:`Grid`), where im2col and col2im move whole rows, and the
    bias rides in the products as a row of ones in ``cols`` (see ``forward``).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation):
        kernel = w.shape[2:]
        w2 = w.reshape(w.shape[0], -1)
        ctx.w2, ctx.x_shape, ctx.w_shape = w2, x.shape, w.shape
        ctx.geometry = (kernel, stride, padding, dilation)
        ctx.grid = None
        # On the CPU the bias rides in the products: W2 gets b as one more column and
        # cols a row of ones, so y = [W2 b] @ [cols; 1] and the last column of dW2 is db.
        # That saves a pass over y forward and over dy backward (2.5 ms of the cnn step).
        on_cpu = isinstance(x, np.ndarray)
        ctx.folded = b is not None and on_cpu
        w_cols = np.concatenate([w2, b[:, None]], axis=1) if ctx.folded else w2
        b_rest = None if ctx.folded else b
        out_shape = (x.shape[0], w.shape[0], -1)
        # The padded grid pays off in col2im, so only when x wants a gradient (not for a
        # first layer, nor without a graph).
        wants_dx = getattr(ctx, "needs_input_grad", (False,))[0]
        if wants_dx and on_cpu and all(s == 1 for s in stride):
            ctx.grid = Grid(x.shape, kernel, padding, dilation)
            ctx.cols = ctx.grid.im2col(x, ones_row=ctx.folded)
            return ctx.grid.crop(_product(w_cols, ctx.cols, out_shape))  # the bias is in
        ctx.cols, out = im2col(x, kernel, stride, padding, dilation, ones_row=ctx.folded)
        y = _product(w_cols, ctx.cols, out_shape)
        return _add_bias(y.reshape((x.shape[0], w.shape[0]) + out), b_rest)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        if ctx.grid is None:
            dy = grad.reshape(grad.shape[0], grad.shape[1], -1)  # (N, C_out, L)
        else:  # on the padded grid, zero where the forward's columns were cropped off
            dy = ctx.grid.uncrop(grad)
        rows = ctx.w2.shape[1]
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dcols = _product(ctx.w2.T, dy, (grad.shape[0], rows, -1))
            if ctx.grid is None:
                dx = col2im(dcols, ctx.x_shape, *ctx.geometry)
            else:
                dx = ctx.grid.col2im(dcols)
            del dcols  # its memory goes back to the pool for dW's product
        if ctx.needs_input_grad[1]:
            dw_cols = xp.matmul(dy, ctx.cols.transpose(0, 2, 1)).sum(axis=0)
            dw = dw_cols[:, :rows].reshape(ctx.w_shape)
            if ctx.folded:
                db = dw_cols[:, rows].copy()
        if ctx.needs_input_grad[2] and db is None:
            db = _bias_grad(grad)
        return dx, dw, db, None, None, None


class TransposedConvolution(Function):
    """The adjoint of :class:`Convolution` with respect to its input.

    x: (N, C_in, *S), w: (C_in, C_out, *kernel) -> y: (N, C_out, *out) with
    out = (S - 1) * s - 2p + d(k - 1) + output_padding + 1.
    y = col2im(W2.T @ x) + b, W2 = w.reshape(C_in, -1);  so, as for any adjoint,
    dx = W2 @ im2col(dy) (a convolution of dy),  dW2 = sum_n x[n] @ im2col(dy)[n].T.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, dilation):
        kernel = w.shape[2:]
        out = tuple(
            (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            for n, k, s, p, op, d in zip(
                x.shape[2:], kernel, stride, padding, output_padding, dilation
            )
        )
        w2 = w.reshape(w.shape[0], -1)
        x3 = x.reshape(x.shape[0], x.shape[1], -1)  # (N, C_in, L)
        y_shape = (x.shape[0], w.shape[1]) + out
        y = _add_bias(col2im(w2.T @ x3, y_shape, kernel, stride, padding, dilation), b)
        ctx.x3, ctx.w2, ctx.x_shape, ctx.w_shape = x3, w2, x.shape, w.shape
        ctx.geometry = (kernel, stride, padding, dilation)
        return y

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        cols, _ = im2col(grad, *ctx.geometry)  # (N, C_out*K, L)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = (ctx.w2 @ cols).reshape(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            dw = xp.matmul(ctx.x3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(ctx.w_shape)
        if ctx.needs_input_grad[2]:
            db = _bias_grad(grad)
        return dx, dw, db, None, None, None, None


# ---------------------------------------------------------------------------


def _check(name: str, x: Tensor, weight: Tensor, spatial: int, in_axis: int) -> None:
    if x.ndim != spatial + 2 or weight.ndim != spatial + 2:
        raise ValueError(
            f"{name}: expected input and weight with {spatial + 2} dims, got input "
            f"{tuple(x.shape)} and weight {tuple(weight.shape)}"
        )
    if x.shape[1] != weight.shape[in_axis]:
        raise ValueError(
            f"{name}: input {tuple(x.shape)} has {x.shape[1]} channels but weight "
            f"{tuple(weight.shape)} expects {weight.shape[in_axis]}"
        )


def _conv(name, x, weight, bias, stride, padding, dilation, spatial):
    _check(name, x, weight, spatial, in_axis=1)
    return Convolution.apply(
        x,
        weight,
        bias,
        ntuple(stride, spatial, "stride"),
        ntuple(padding, spatial, "padding"),
        ntuple(dilation, spatial, "dilation"),
    )


def conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1
) -> Tensor:
    """2-d convolution (cross-correlation, as in PyTorch).

    x: (N, C_in, H, W), weight: (C_out, C_in, kH, kW), bias: (C_out,)
    -> (N, C_out, H_out, W_out), H_out = floor((H + 2p - d(kH - 1) - 1) / s) + 1.
    ``stride``, ``padding`` and ``dilation`` are ints or pairs.
    """
    return _conv("conv2d", x, weight, bias, stride, padding, dilation, 2)


def conv3d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1
) -> Tensor:
    """3-d convolution over video clips.

    x: (N, C_in, T, H, W), weight: (C_out, C_in, kT, kH, kW) -> (N, C_out, T_out, H_out, W_out).
    """
    return _conv("conv3d", x, weight, bias, stride, padding, dilation, 3)


def conv_transpose2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    dilation=1,
) -> Tensor:
    """Transposed 2-d convolution: the gradient of ``conv2d`` with respect to its input.

    x: (N, C_in, H, W), weight: (C_in, C_out, kH, kW) -> (N, C_out, H_out, W_out),
    H_out = (H - 1) s - 2p + d(kH - 1) + output_padding + 1.
    """
    _check("conv_transpose2d", x, weight, 2, in_axis=0)
    stride = ntuple(stride, 2, "stride")
    dilation = ntuple(dilation, 2, "dilation")
    output_padding = ntuple(output_padding, 2, "output_padding")
    if any(op >= s for op, s in zip(output_padding, stride)):
        raise ValueError(
            f"conv_transpose2d: output_padding {output_padding} must be smaller than "
            f"stride {stride}"
        )
    return TransposedConvolution.apply(
        x, weight, bias, stride, ntuple(padding, 2, "padding"), output_padding, dilation
    )
