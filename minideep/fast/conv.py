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

Where the input has 8 channels or more (and a sample's output fits in cache), im2col is
skipped altogether: :class:`PhaseGrid` splits the padded input into its stride phases,
on which every kernel offset's inputs are one contiguous run, and
:class:`ShiftedConvolution` multiplies each run by that offset's weights;
:class:`ShiftedTransposedConvolution` is its adjoint. A depthwise convolution
(:class:`DepthwiseConvolution`) adds one scaled slab per kernel offset.

On the GPU, im2col and col2im of 2-d convolutions (and transposed convolutions) are
CUDA kernels (:class:`CudaPatches`, ``kernels/conv.py``). What each saves:
``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import geometry, kernels
from ..geometry import (
    crop_index,
    output_shape,
    pad_spatial,
    transposed_output_shape,
    window_slices,
    windows,
)
from .memory import chunk_rows, empty, for_each_chunk, rows_unbuffered, zeros
from .switch import enabled

# Inputs smaller than this (float values) take im2col even where the shifted products
# would apply: 8 -> 8 channels at 16x16 took 91 us forward at batch 1 shifted, 41 us
# through im2col; from 32768 values (batch 16) on the shifted products were faster.
SHIFTED_MIN_SIZE = 1 << 15


def convolution(x, w, stride: tuple):
    """The fast path of ``ops.conv.Convolution`` for ``x`` and ``w``, or None.

    At least 8 input channels, an input of at least ``SHIFTED_MIN_SIZE`` values (below
    that the K products' fixed costs outweigh im2col's copy) and a sample's output small
    enough to stay in cache (256 KB) run :class:`ShiftedConvolution`; every other CPU
    float case :class:`FoldedBiasConvolution` (measured in
    ``benchmarks/results/fast_paths.md``).
    """
    if not (enabled() and isinstance(x, np.ndarray) and x.dtype.kind == "f"):
        return None
    if x.shape[1] >= 8 and x.size >= SHIFTED_MIN_SIZE:
        positions = math.prod(x.shape[2:]) // math.prod(stride)  # about a sample's outputs
        if w.shape[0] * positions * x.itemsize <= 1 << 18:
            return ShiftedConvolution
    return FoldedBiasConvolution


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


def grouped_convolution(x, w, groups: int):
    """The fast path of ``ops.conv.GroupedConvolution`` for ``x`` and ``w``, or None.

    A depthwise convolution (one input and one output channel per group, any number of
    spatial axes) runs :class:`DepthwiseConvolution`; other groupings the reference.
    """
    if (
        enabled()
        and isinstance(x, np.ndarray)
        and x.dtype.kind == "f"
        and groups == x.shape[1] == w.shape[0]
        and w.shape[1] == 1
    ):
        return DepthwiseConvolution
    return None


class DepthwiseConvolution:
    """A depthwise convolution on the CPU, one kernel offset at a time, without im2col.

    Channel c has its own kernel ``w[c, 0]``, so ``y[n, c] = b[c] + sum_kk w[c, 0, kk] *
    x_pad[n, c, window offset kk]``: one scaled run per offset added into ``y``. The
    reference builds im2col's ``(N, C*K, L)`` matrix (K times the input) for products of
    one row each; here every pass reads the input's phases where they lie
    (:class:`PhaseGrid`, with a per-channel multiply for its product), one chunk of the
    batch at a time so they stay in cache. Backward the same way:
    ``dx_pad[run kk] += w[:, 0, kk] * dy``; ``dw[c, 0, kk] = sum_{n, p} dy[n, c, p]
    x_pad[n, c, run kk]``. The sums run in another order than the reference's products:
    equal to rounding.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        kernel = w.shape[2:]
        grid = PhaseGrid(x.shape, kernel, stride, padding, dilation)
        source = grid.phases(x)
        y = grid.correlate(source, _channel_taps(w), b, product=np.multiply)
        ctx.save_for_backward(source, w)
        ctx.x_shape, ctx.grid = x.shape, grid
        ctx.geometry = (kernel, stride, padding, dilation)
        ctx.patches, ctx.groups = geometry, groups  # for the reference's graph of the gradient
        return y

    @staticmethod
    def backward(ctx, grad):
        source, w = ctx.saved_tensors
        grid = ctx.grid
        dy_wide = grid.uncrop(grad)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:  # a per-channel multiply is its own adjoint
            dx = grid.spread(dy_wide, _channel_taps(w), product=np.multiply)
        if ctx.needs_input_grad[1]:
            m = grid.margin
            dy = dy_wide[:, :, m : m + grid.length]  # zeros off the output positions
            dw = np.zeros((w.shape[0], len(grid.taps)), grad.dtype)  # (C, K), row-major

            def correlate(i):  # one chunk of the batch
                for k, (j, off) in enumerate(grid.taps):
                    run = source[i][:, j, :, off : off + grid.length]
                    dw[:, k] += np.einsum("ncl,ncl->c", dy[i], run)

            for_each_chunk(correlate, dy)
            dw = dw.reshape(w.shape)
        if ctx.needs_input_grad[2]:
            db = geometry.bias_grad(grad)
        return dx, dw, db, None, None, None, None


class PhaseGrid:
    """Where each kernel offset's inputs lie, as contiguous runs, for any stride.

    Split the padded input ``x_pad (N, C, *P)`` into its ``prod(stride)`` *phases*:
    phase ``r`` holds ``x_pad[..., r_0::s_0, r_1::s_1, ...]`` (each ``Q_i = ceil(P_i /
    s_i)`` long, zeros past the end). Output position ``p`` and kernel offset ``kk``
    read ``x_pad[p * s + kk * d]``, which is element ``p + q`` of phase ``r``, with ``q, r
    = divmod(kk * d, s)`` per axis. So, on one phase flattened (as in
    :class:`PaddedGrid`), the elements an offset sees in all windows form one contiguous
    run ``phase_flat[r][off(q) :][:length]``: ``length = out_0 * prod(Q[1:])``
    positions, the extra ones (``p_i >= out_i`` for ``i > 0``) cropped at the end. For
    stride 1 there is one phase, the padded input itself.
    """

    def __init__(self, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation):
        self.batch, self.channels, *spatial = x_shape
        self.spatial, self.stride, self.padding = tuple(spatial), stride, padding
        self.padded = tuple(s + 2 * p for s, p in zip(spatial, padding))
        self.out = output_shape(self.spatial, kernel, stride, padding, dilation)
        self.phase_shape = tuple(-(-n // s) for n, s in zip(self.padded, stride))  # Q
        self.residues = list(itertools.product(*(range(s) for s in stride)))
        steps = [1]
        for n in self.phase_shape[:0:-1]:
            steps.insert(0, steps[0] * n)
        self.length = self.out[0] * steps[0]
        self.taps = []  # per kernel offset (row-major): (phase number, flat offset)
        for kk in itertools.product(*(range(k) for k in kernel)):
            q, r = zip(*(divmod(k * d, s) for k, d, s in zip(kk, dilation, stride)))
            self.taps.append((self.residues.index(r), sum(a * b for a, b in zip(q, steps))))
        self.margin = max(off for _, off in self.taps)
        # flat length of a phase: the whole phase, and every run stays inside
        self.size = max(self.margin + self.length, math.prod(self.phase_shape))

    def _phase(self, r):
        """The index of phase ``r`` in the padded input, and its true shape there."""
        index = (slice(None), slice(None)) + tuple(
            slice(a, None, s) for a, s in zip(r, self.stride)
        )
        shape = tuple(-(-(n - a) // s) for n, a, s in zip(self.padded, r, self.stride))
        return index, shape

    def phases(self, x):
        """``x (N, C, *S) -> (N, phases, C, size)``: every phase of the padded input, flat."""
        flat = zeros((x.shape[0], len(self.residues), x.shape[1], self.size), x.dtype)
        q_total = math.prod(self.phase_shape)
        for j, r in enumerate(self.residues):
            # padded index a = r + s q holds x[a - p] where 0 <= a - p < n: copy those
            # straight from x (the padding stays zero), without padding x first
            into, take = [slice(None), slice(None)], [slice(None), slice(None)]
            for a, s, p, n in zip(r, self.stride, self.padding, self.spatial):
                first = max(0, -(-(p - a) // s))  # the first q with a + s q >= p
                last = -(-(p + n - a) // s)  # one past the last q with a + s q < p + n
                into.append(slice(first, max(first, last)))
                take.append(slice(a + s * first - p, n, s))
            body = flat[:, j, :, :q_total].reshape(x.shape[:2] + self.phase_shape)
            body[tuple(into)] = x[tuple(take)]
        return flat

    def unphase(self, d_flat):
        """The adjoint of :meth:`phases`: ``(N, phases, C, size) -> (N, C, *S)``."""
        n, _, c, _ = d_flat.shape
        q_total = math.prod(self.phase_shape)
        dx_pad = empty((n, c) + self.padded, d_flat.dtype)
        for j, r in enumerate(self.residues):
            index, shape = self._phase(r)
            body = d_flat[:, j, :, :q_total].reshape((n, c) + self.phase_shape)
            dx_pad[index] = body[(slice(None), slice(None)) + tuple(slice(0, m) for m in shape)]
        return dx_pad[crop_index(self.spatial, self.padding)] if any(self.padding) else dx_pad

    def crop(self, y):
        """``y (N, C, length)`` on the grid -> ``(N, C, *out)``."""
        on_grid = y.reshape(y.shape[:2] + self.out[:1] + self.phase_shape[1:])
        return on_grid[(slice(None), slice(None)) + tuple(slice(0, o) for o in self.out)]

    def uncrop(self, grad):
        """``grad (N, C, *out)`` on the grid, ``margin`` zeros before it and zeros after:
        ``(N, C, margin + size)``, zero off the output positions."""
        m = self.margin
        wide = empty(grad.shape[:2] + (m + self.size,), grad.dtype)
        on_grid = wide[:, :, m : m + self.length].reshape(
            grad.shape[:2] + self.out[:1] + self.phase_shape[1:]
        )
        valid = (slice(None), slice(None)) + tuple(slice(0, o) for o in self.out)

        def fill(i):  # one chunk of the batch
            wide[i][:, :, :m] = 0
            wide[i][:, :, m + self.length :] = 0
            for axis, (o, n) in enumerate(zip(self.out[1:], self.phase_shape[1:]), start=3):
                if o < n:
                    on_grid[i][(slice(None),) * axis + (slice(o, None),)] = 0
            on_grid[i][valid] = grad[i]

        for_each_chunk(fill, wide)
        return wide

    # The three products of a convolution, each one product per kernel offset and
    # sample. ``taps[k]`` is the weight of offset k, ``(C_out, C_in)`` for ``np.matmul``
    # (or ``(C, 1)``, each channel its own factor, for ``np.multiply``: depthwise).

    def correlate(self, source, taps, bias=None, product=np.matmul):
        """``y = b + sum_kk taps[kk] @ run(kk)``: ``source (N, phases, C_in, size) ->
        (N, C_out, *out)`` (a convolution's forward)."""
        y = empty((source.shape[0], taps.shape[1], self.length), source.dtype)
        scratch = empty((chunk_rows(y),) + y.shape[1:], source.dtype)
        runs = [(j, slice(off, off + self.length)) for j, off in self.taps]

        def accumulate(i):  # one chunk of the batch
            yi, tmp = y[i], scratch[: len(y[i])]
            (j, run), rest = runs[0], runs[1:]
            product(taps[0], source[i][:, j, :, run], out=yi)
            for tap, (j, run) in zip(taps[1:], rest):
                product(tap, source[i][:, j, :, run], out=tmp)
                yi += tmp
            if bias is not None:
                yi += bias[:, None]

        with rows_unbuffered(self.length):  # for the bias
            for_each_chunk(accumulate, y)
        return self.crop(y)

    def spread(self, dy_wide, taps_t, product=np.matmul):
        """The adjoint of :meth:`correlate` in its source: ``d_source[r][j] = sum_{kk in
        phase r} taps_t[kk] @ dy[j - off(kk)]``, ``-> (N, C_in, *S)`` (a convolution's
        input gradient, a transposed convolution's forward). ``taps_t`` are the adjoint
        operators: the transposed weights of :func:`_transposed_taps`, or the same
        per-channel factors for a multiply."""
        n = dy_wide.shape[0]
        d_source = empty((n, len(self.residues), taps_t.shape[1], self.size), dy_wide.dtype)
        scratch = empty((chunk_rows(d_source),) + d_source.shape[2:], dy_wide.dtype)
        m = self.margin
        by_phase = [
            [k for k, (j, _) in enumerate(self.taps) if j == p] for p in range(len(self.residues))
        ]

        def gather(i):  # one chunk of the batch
            tmp = scratch[: len(d_source[i])]
            for p, offsets in enumerate(by_phase):
                d = d_source[i][:, p]
                if not offsets:
                    d.fill(0)
                    continue
                for count, k in enumerate(offsets):
                    off = self.taps[k][1]
                    read = dy_wide[i][:, :, m - off : m - off + self.size]
                    product(taps_t[k], read, out=d if count == 0 else tmp)
                    if count:
                        d += tmp

        for_each_chunk(gather, d_source)
        return self.unphase(d_source)

    def weight_grad(self, source, dy):
        """``dW[kk] = sum_n dy[n] @ run(kk)[n].T``: ``(K, C_out, C_in)``."""
        dw = np.zeros((len(self.taps), dy.shape[1], source.shape[2]), dy.dtype)
        runs = [(j, slice(off, off + self.length)) for j, off in self.taps]

        def accumulate(i):  # one chunk of the batch
            for k, (j, run) in enumerate(runs):
                dw[k] += np.matmul(dy[i], source[i][:, j, :, run].transpose(0, 2, 1)).sum(axis=0)

        for_each_chunk(accumulate, dy)
        return dw


def _taps(w):
    """``w (C_out, C_in, *kernel) -> (K, C_out, C_in)``: the weight of each offset."""
    return np.ascontiguousarray(w.reshape(w.shape[0], w.shape[1], -1).transpose(2, 0, 1))


def _transposed_taps(w):
    """The adjoint operators of :func:`_taps` for :meth:`PhaseGrid.spread`: ``(K, C_in,
    C_out)`` and ``np.matmul``, or with one output channel ``(K, C_in, 1)`` and
    ``np.multiply`` (each product is then an outer product, which BLAS does slowly)."""
    taps_t = np.ascontiguousarray(_taps(w).transpose(0, 2, 1))
    return taps_t, np.multiply if w.shape[0] == 1 else np.matmul


def _channel_taps(w):
    """A depthwise ``w (C, 1, *kernel) -> (K, C, 1)``: each channel's factor per offset."""
    return np.ascontiguousarray(w.reshape(w.shape[0], -1).T[..., None])


def _untaps(dw, shape):
    """The inverse of :func:`_taps`."""
    return np.ascontiguousarray(dw.transpose(1, 2, 0)).reshape(shape)


class ShiftedConvolution:
    """A convolution on the CPU as one product per kernel offset, without im2col.

    On the phases of the padded input (:class:`PhaseGrid`), the elements that kernel
    offset ``kk`` meets in all windows are one contiguous run, so ``y = b + sum_kk
    W[:, :, kk] @ run(kk)``: K products that read the input where it lies, where the
    reference first copies it K times into im2col's matrix. Backward the same way:
    ``dW[:, :, kk] = sum_n dy[n] @ run(kk)[n].T``, and the input gradient adds
    ``W[:, :, kk].T @ dy`` back along each run, written as reads of ``dy`` shifted the
    other way so that every product writes whole rows. One chunk of the batch at a
    time, so a sample's input stays in cache across the K products. The sums run in
    another order than the reference's: equal to rounding.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation):
        kernel = w.shape[2:]
        grid = PhaseGrid(x.shape, kernel, stride, padding, dilation)
        source = grid.phases(x)
        y = grid.correlate(source, _taps(w), b)
        ctx.save_for_backward(source, w)
        ctx.x_shape, ctx.grid = x.shape, grid
        ctx.geometry = (kernel, stride, padding, dilation)
        ctx.patches = geometry  # for the reference's graph of the gradient
        return y

    @staticmethod
    def backward(ctx, grad):
        source, w = ctx.saved_tensors
        grid = ctx.grid
        dy_wide = grid.uncrop(grad)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = grid.spread(dy_wide, *_transposed_taps(w))
        if ctx.needs_input_grad[1]:
            m = grid.margin
            dw = _untaps(grid.weight_grad(source, dy_wide[:, :, m : m + grid.length]), w.shape)
        if ctx.needs_input_grad[2]:
            db = geometry.bias_grad(grad)
        return dx, dw, db, None, None, None


def transposed_convolution(x, w, stride: tuple, padding: tuple, output_padding, dilation):
    """The fast path of ``ops.conv.TransposedConvolution``, or None for the reference.

    :class:`ShiftedTransposedConvolution` on the CPU, under the rule of
    :func:`convolution` read for the convolution it is the adjoint of (at least 8 of its
    outputs' channels, an input of ``SHIFTED_MIN_SIZE`` values or more, a sample's input
    in 256 KB).
    """
    if not (enabled() and isinstance(x, np.ndarray) and x.dtype.kind == "f"):
        return None
    if any(op >= s for op, s in zip(output_padding, stride)):
        return None  # (then the adjoint convolution's output is not x's shape)
    if (
        w.shape[1] >= 8
        and x.size >= SHIFTED_MIN_SIZE
        and w.shape[0] * math.prod(x.shape[2:]) * x.itemsize <= 1 << 18
    ):
        return ShiftedTransposedConvolution
    return None


class ShiftedTransposedConvolution:
    """A transposed convolution on the CPU through :class:`PhaseGrid`, without col2im.

    It is the adjoint of a convolution with the same weight (``(C_in, C_out, *k)`` read as
    that convolution's ``(C_out, C_in, *k)``), whose input has this one's output shape.
    So its forward is that convolution's input gradient (:meth:`PhaseGrid.spread`), its
    input gradient that convolution's forward (:meth:`PhaseGrid.correlate`) and its weight
    gradient that convolution's, with the roles of input and output gradient swapped.
    Equal to the reference to rounding.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, dilation):
        kernel = w.shape[2:]
        out = transposed_output_shape(
            x.shape[2:], kernel, stride, padding, output_padding, dilation
        )
        grid = PhaseGrid((x.shape[0], w.shape[1]) + out, kernel, stride, padding, dilation)
        x_wide = grid.uncrop(x)  # x on the adjoint convolution's output grid
        y = grid.spread(x_wide, *_transposed_taps(w))
        if b is not None:
            with rows_unbuffered(math.prod(out)):
                y += b.reshape((-1,) + (1,) * len(out))
        ctx.save_for_backward(x_wide, w)
        ctx.x_shape, ctx.grid = x.shape, grid
        ctx.geometry = (kernel, stride, padding, dilation)
        ctx.patches = geometry  # for the reference's graph of the gradient
        return y

    @staticmethod
    def backward(ctx, grad):
        x_wide, w = ctx.saved_tensors
        grid = ctx.grid
        source = grid.phases(grad)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = grid.correlate(source, _taps(w))
        if ctx.needs_input_grad[1]:
            m = grid.margin
            dw = _untaps(grid.weight_grad(source, x_wide[:, :, m : m + grid.length]), w.shape)
        if ctx.needs_input_grad[2]:
            db = geometry.bias_grad(grad)
        return dx, dw, db, None, None, None, None
