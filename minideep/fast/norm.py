"""Fast paths of the normalisations on the CPU (reference: ``ops/norm.py``: ``LayerNorm``,
``BatchNorm``, ``GroupNorm``).

The references write a new array for every operator and reduce over axes with NumPy's
general reductions: about a dozen passes over the activations forward and backward,
some of them strided. Here the sums (of products) are ``einsum`` loops along contiguous
rows (LayerNorm's plain sums are matrix-vector products, see :class:`RowLayerNorm`;
GroupNorm's sums of products batched BLAS dots, :func:`_dots`), none with a temporary;
a per-channel factor meets each channel's row of positions as one value per row (under
``memory.rows_unbuffered``) or, for short rows, expanded once to a contiguous row, and
the elementwise steps write into pooled memory in place. Same formulas; the sums run in
another order, so the results differ by rounding. What they save:
``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import math

import numpy as np

from .memory import chunk_rows, empty, empty_like, for_each_chunk, rows_unbuffered
from .switch import enabled


def _dots(a, b, out):
    """``out[...] = sum(a * b, axis=-1)`` for C-contiguous a, b of shape (..., L): one
    batched product of each row by the matching column, a BLAS dot each. Without the
    product array, as ``einsum`` is, and 2-2.4x faster than its sum of products on rows
    of 3072 (1.2x on rows of 128: ``benchmarks/results/fast_paths.md``)."""
    n = a.shape[-1]
    into = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
    np.matmul(a.reshape(-1, 1, n), b.reshape(-1, n, 1), out=into.reshape(-1, 1, 1))
    if into is not out:
        out[...] = into
    return out


def layer_norm(x):
    """The fast path of ``ops.norm.LayerNorm`` for ``x``, or None for the reference."""
    if enabled() and isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.ndim >= 2 and x.size:
        return RowLayerNorm
    return None


class RowLayerNorm:
    """LayerNorm on the rows of ``x.reshape(-1, n)``.

    The plain row sums are matrix-vector products (the mean: ``rows @ ones``; backward,
    ``g @ w`` and ``(g * xhat) @ w``: BLAS reads the matrix once), and so are the column
    sums of the weight's and bias's gradients (``ones @ (g * xhat)``, ``ones @ g``); the
    variance's sum of squares is an ``einsum``. A step against the weight or bias (one
    value per column) runs on the view ``(rows / t, t * n)`` against the vector repeated
    t times: NumPy starts its loop once per row, and on 128-long rows a step against the
    weight took 46 us where one between two arrays took 20-30. A step against one value
    per row (the mean, 1/std) keeps the row's own loop (2.7x a step between two arrays:
    ``benchmarks/results/floors.md``)."""

    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        n = math.prod(x.shape[x.ndim - k :])
        rows = np.ascontiguousarray(x).reshape(-1, n)
        ones = np.ones(n, x.dtype)
        mean = rows @ ones
        mean *= 1 / n
        xhat = np.subtract(rows, mean[:, None], out=empty_like(rows))
        var = np.einsum("ij,ij->i", xhat, xhat)
        var *= 1 / n
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        xhat *= invstd[:, None]
        t = _rows_per_run(len(rows), n)
        runs = xhat.reshape(-1, t * n)  # t rows end to end
        if weight is not None:
            y = np.multiply(runs, np.tile(weight.reshape(-1), t), out=empty_like(runs))
            if bias is not None:
                y += np.tile(bias.reshape(-1), t)
        elif bias is not None:
            y = np.add(runs, np.tile(bias.reshape(-1), t), out=empty_like(runs))
        else:
            y = xhat.copy()
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.axes, ctx.eps, ctx.n, ctx.t = tuple(range(x.ndim - k, x.ndim)), eps, n, t
        ctx.shape = x.shape[x.ndim - k :]  # normalized_shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat, invstd, weight = ctx.saved_tensors
        n, t = ctx.n, ctx.t
        g = np.ascontiguousarray(grad).reshape(-1, n)
        w = weight.reshape(-1) if weight is not None else np.ones(n, g.dtype)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = np.multiply(g, xhat, out=empty_like(g)) if need_x or need_w else None
        dx = dw = db = None
        if need_w:
            dw = (np.ones(len(g), g.dtype) @ gx).reshape(ctx.shape)
        if need_b:
            db = (np.ones(len(g), g.dtype) @ g).reshape(ctx.shape)
        if need_x:
            # dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std, dxhat = g * w
            mean_d = g @ w
            mean_d *= 1 / n
            mean_dx = gx @ w
            mean_dx *= 1 / n
            runs = g.reshape(-1, t * n)
            dx = np.multiply(runs, np.tile(w, t), out=empty_like(runs)).reshape(g.shape)
            dx -= mean_d[:, None]
            dx -= np.multiply(xhat, mean_dx[:, None], out=gx)  # gx is spent: dw came first
            dx *= invstd[:, None]
            dx = dx.reshape(grad.shape)
        return dx, dw, db, None, None


_RUN = 8192  # values in a row of t rows end to end, at most (where n divides it)


def _rows_per_run(rows: int, n: int) -> int:
    """t: the number of rows of n values whose end-to-end run of t*n values replaces a
    row in the steps against one value per column (t divides the number of rows)."""
    return math.gcd(rows, max(1, _RUN // n))


# ---------------------------------------------------------------------------
# BatchNorm: per-channel statistics and a per-channel affine.
#
# The reference broadcasts (1, C, 1, 1) vectors against x and reduces over the axes
# (0, 2, 3), each step a pass over the whole array. Here x is the matrix (N, C*L) of
# its samples. A per-channel vector meets rows of L >= 512 positions as one value per
# row, under ``memory.rows_unbuffered`` (NumPy's default loop copies such values into
# its buffers: 8-16% of the layer); shorter rows meet it expanded once to a row of C*L
# values (NumPy's loops against a contiguous row ran up to 2x faster than against a
# vector repeated along many short runs). The sums are einsums along each channel's L
# positions (BLAS dots, as GroupNorm's, were 4% faster but round differently, and the
# lessons' stated results were trained with these), and sums that read the same data are
# taken in one pass over it, a chunk at a time.


class _Channels:
    """x: (N, C, *) as the matrix (N, C*L); per-channel vectors as one value per row of L
    positions, or expanded to rows of C*L."""

    def __init__(self, x):
        self.n, self.c = x.shape[0], x.shape[1]
        self.l = x.size // (self.n * self.c)
        self.shape = (self.n, self.c * self.l)
        self.along = self.l >= _ALONG_MIN
        self.by_row = self.l >= ROW_MIN

    def matrix(self, a):
        return np.ascontiguousarray(a).reshape(self.shape)

    def expand(self, v):
        """(C,) -> (C*L,): each channel's value at each of its positions; or, for rows
        of L values long enough for :func:`memory.rows_unbuffered`, (C, 1), one value per
        row of :meth:`rows`."""
        if self.by_row:
            return v[:, None]
        return np.repeat(v, self.l) if self.l > 1 else v

    def rows(self, a):
        """A chunk (k, C*L) of the matrix as the (k, C, L) rows :meth:`expand` meets."""
        return a.reshape(len(a), self.c, self.l) if self.by_row else a

    def partial_sums(self, a, dtype):
        """An accumulator for :meth:`add_sums`, one row per sample or one in all."""
        return np.zeros((self.n, self.c) if self.along else self.shape[1], dtype)

    def add_sums(self, acc, i, a, b=None):
        """Add the sums of a[i] (or of a[i] * b[i], without the product array) to acc:
        along each channel's L positions where they are many (a long contiguous loop),
        else down the columns."""
        ab = (a[i],) if b is None else (a[i], b[i])
        if self.along:
            ab = tuple(t.reshape(len(t), self.c, self.l) for t in ab)
            np.einsum(",".join(["ncl"] * len(ab)) + "->nc", *ab, out=acc[i])
        else:
            acc += np.einsum(",".join(["nj"] * len(ab)) + "->j", *ab)

    def total(self, acc):
        """Per-channel totals of an accumulator."""
        if self.along:
            return acc.sum(axis=0)
        return acc.reshape(self.c, self.l).sum(axis=1)


_ALONG_MIN = 64  # positions per channel from which its sums run along them first
ROW_MIN = 512  # positions per channel from which a per-channel factor is one per row
_MIN_SIZE = 8192  # smaller inputs: the reference's fewer calls into NumPy are faster


def _channels_apply(x) -> bool:
    """A CPU float32/float64 array of (N, C, ...) with at least ``_MIN_SIZE`` values, fast
    paths on: when BatchNorm's and GroupNorm's fast paths run."""
    return (
        enabled()
        and isinstance(x, np.ndarray)
        and x.dtype in (np.float32, np.float64)
        and x.ndim >= 2
        and x.size >= _MIN_SIZE
    )


def batch_norm(x):
    """The fast path of ``ops.norm.BatchNorm`` for ``x``, or None for the reference."""
    if _channels_apply(x):
        return ChannelBatchNorm
    return None


class ChannelBatchNorm:
    """BatchNorm on the matrix (N, C*L) of x (:class:`_Channels`): saves the reference's
    strided reductions and about half its passes (``benchmarks/results/fast_paths.md``).

    Keeps x - mean for the backward where the reference keeps xhat (the backward then
    folds invstd into its per-channel factors), and invstd, weight and running_mean as
    the reference does: with ``create_graph`` the reference backward recomputes xhat
    from the input and uses only those. Without gradients to come, y is made in place.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        ch = _Channels(x)
        m = ch.matrix(x)
        if training:
            n = x.size // ch.c
            sums = ch.partial_sums(m, x.dtype)
            for_each_chunk(lambda i: ch.add_sums(sums, i, m), m)
            mean = ch.total(sums) / n
        me = ch.expand(mean if training else running_mean)
        y = empty_like(m)
        kept = any(ctx.needs_input_grad[:3])  # x - mean is saved apart from y for backward
        centred = empty_like(m) if kept else y  # else y is made in place
        squares = ch.partial_sums(m, x.dtype)

        rows = ch.rows

        def centre(i):  # and sum the squares while the chunk is in cache
            np.subtract(rows(m[i]), me, out=rows(centred[i]))
            if training:
                ch.add_sums(squares, i, centred, centred)

        if training:
            with rows_unbuffered(ch.l):
                for_each_chunk(centre, m)
            var = ch.total(squares) / n
            if running_mean is not None:
                from ..ops.norm import update_running_stats  # the reference's own update

                update_running_stats(running_mean, running_var, mean, var, momentum, n)
        else:
            var = running_var
        invstd = (1.0 / (var + eps) ** 0.5).astype(x.dtype)
        se = ch.expand(invstd * weight if weight is not None else invstd)
        be = ch.expand(bias) if bias is not None else None

        def normalise(i):
            if not training:
                centre(i)
            np.multiply(rows(centred[i]), se, out=rows(y[i]))
            if be is not None:
                np.add(rows(y[i]), be, out=rows(y[i]))

        with rows_unbuffered(ch.l):
            for_each_chunk(normalise, m)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        ctx.save_for_backward(
            centred if kept else None,
            invstd.reshape(shape),
            weight,
            None if training else running_mean,
        )
        ctx.training, ctx.axes, ctx.shape, ctx.eps = training, _channel_axes(x), shape, eps
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        """dx = k dy - (k invstd^2 sum(dy c) / n) c - k sum(dy) / n with c = x - mean
        and k = weight invstd (the reference's formula, multiplied out); in evaluation
        dx = k dy. dweight = invstd sum(dy c), dbias = sum(dy)."""
        centred, invstd, weight, _ = ctx.saved_tensors
        ch = _Channels(grad)
        g = ch.matrix(grad)
        invstd = invstd.reshape(-1)
        want_dx, want_dw, want_db = ctx.needs_input_grad[:3]
        training = ctx.training
        k = invstd * weight if weight is not None else invstd
        ke = ch.expand(k)
        dx = empty_like(g) if want_dx else None
        sum_dy, sum_dyc = ch.partial_sums(g, g.dtype), ch.partial_sums(g, g.dtype)
        rows = ch.rows

        def sums(i):  # and, in evaluation, dx while the chunk is in cache
            ch.add_sums(sum_dy, i, g)
            ch.add_sums(sum_dyc, i, g, centred)
            if want_dx and not training:
                np.multiply(rows(g[i]), ke, out=rows(dx[i]))

        with rows_unbuffered(ch.l):
            for_each_chunk(sums, g)
        sum_dy, sum_dyc = ch.total(sum_dy), ch.total(sum_dyc)
        if want_dx and training:
            n = grad.size // ch.c
            ae = ch.expand(k * invstd * invstd * sum_dyc / n)
            ce = ch.expand(k * sum_dy / n)
            tmp = empty((chunk_rows(g), ch.shape[1]), grad.dtype)

            def step(i):
                d = rows(dx[i])
                np.multiply(rows(g[i]), ke, out=d)
                d -= np.multiply(rows(centred[i]), ae, out=rows(tmp[: len(g[i])]))
                d -= ce

            with rows_unbuffered(ch.l):
                for_each_chunk(step, g)
        dx = dx.reshape(grad.shape) if want_dx else None
        dw = invstd * sum_dyc if want_dw else None
        return dx, dw, sum_dy if want_db else None, None, None, None, None, None


def _channel_axes(x):
    return (0,) + tuple(range(2, x.ndim))


# ---------------------------------------------------------------------------
# GroupNorm: statistics per sample and group, the affine per channel.
#
# The reference is LayerNorm's algorithm on the (N, G, m) view, one new array per
# operator. Here the sums over each group are einsums and BLAS dots (sums over each
# channel's L positions first, which give dweight and dbias as well), x - mean is kept
# instead of xhat, invstd (and the weight) are per-(sample, channel) factors, one value
# per row of L positions (``memory.rows_unbuffered``), and the rest runs in place.


def group_norm(x):
    """The fast path of ``ops.norm.GroupNorm`` for ``x``, or None for the reference."""
    if _channels_apply(x):
        return ChannelGroupNorm
    return None


class ChannelGroupNorm:
    """GroupNorm one cache-sized chunk of samples at a time (each sample's statistics are
    its own, so every step of a chunk finds it in cache), with the arithmetic of
    BatchNorm's fast path: keeps x - mean where the reference keeps xhat, and folds
    invstd into per-(sample, channel) factors of the affine forward and of the
    three-term backward, whose sums are taken per (sample, channel) (they give dweight
    and dbias too). Eleven passes over the activations, forward and backward, where the
    reference makes about twenty (``benchmarks/results/fast_paths.md``)."""

    @staticmethod
    def forward(ctx, x, weight, bias, groups, eps):
        n, c = x.shape[0], x.shape[1]
        grouped = np.ascontiguousarray(x).reshape(n, groups, -1)
        m = grouped.shape[2]
        per = c // groups  # channels per group
        y = empty(grouped.shape, x.dtype)
        kept = any(ctx.needs_input_grad[:3])  # x - mean is saved apart from y for backward
        centred = empty_like(grouped) if kept else y  # else y is made in place
        invstd = np.empty((n, groups), x.dtype)

        def normalise(i):
            xc = centred[i]
            mean = np.einsum("ngk->ng", grouped[i]) / m
            np.subtract(grouped[i], mean[:, :, None], out=xc)
            var = _dots(xc, xc, np.empty(xc.shape[:2], xc.dtype)) / m
            invstd[i] = 1.0 / np.sqrt(var + eps)
            by_channel = y[i].reshape(len(xc), c, -1)
            scale = _scale(invstd[i], weight, per)
            np.multiply(xc.reshape(by_channel.shape), scale, out=by_channel)
            if bias is not None:
                by_channel += bias[:, None]

        with rows_unbuffered(m // per):
            for_each_chunk(normalise, grouped)
        ctx.save_for_backward(centred if kept else None, invstd, weight)
        ctx.groups, ctx.eps, ctx.per_channel = groups, eps, (1, -1) + (1,) * (x.ndim - 2)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        """dx = k dy - k invstd^2 (S(w dy c) / m) c - k S(w dy) / m, with c = x - mean,
        k = invstd (times weight in the first term) and S the sum over the group: the
        reference's formula, multiplied out. The group sums are sum_c w_c of the
        per-(sample, channel) sums of dy and dy c; dweight = sum_n invstd sum_l dy c,
        dbias = sum_n sum_l dy."""
        centred, invstd, weight = ctx.saved_tensors
        n, c, groups = grad.shape[0], grad.shape[1], ctx.groups
        g = np.ascontiguousarray(grad).reshape(n, c, -1)
        m, per = centred.shape[2], c // groups
        by_channel = centred.reshape(g.shape)
        sum_dy, sum_dyc = np.empty((n, c), g.dtype), np.empty((n, c), g.dtype)
        want_dx = ctx.needs_input_grad[0]
        dx = empty(g.shape, g.dtype) if want_dx else None
        tmp = empty((chunk_rows(g),) + centred.shape[1:], g.dtype) if want_dx else None

        def step(i):
            np.einsum("ncl->nc", g[i], out=sum_dy[i])
            _dots(g[i], by_channel[i], sum_dyc[i])
            if not want_dx:
                return
            d, istd = dx[i], invstd[i]
            sum_d, sum_dc = sum_dy[i], sum_dyc[i]
            if weight is not None:
                sum_d, sum_dc = sum_d * weight, sum_dc * weight
            k = len(d)
            mean_d = sum_d.reshape(k, groups, per).sum(axis=2) / m  # (samples, groups)
            mean_dc = sum_dc.reshape(k, groups, per).sum(axis=2) / m
            np.multiply(g[i], _scale(istd, weight, per), out=d)
            t = np.multiply(centred[i], (-(istd**3) * mean_dc)[:, :, None], out=tmp[:k])
            t += (-istd * mean_d)[:, :, None]
            d += t.reshape(d.shape)

        with rows_unbuffered(g.shape[2]):
            for_each_chunk(step, g)
        dw = None
        if ctx.needs_input_grad[1]:
            dw = np.einsum("ng,ngk->gk", invstd, sum_dyc.reshape(n, groups, per)).reshape(c)
        db = sum_dy.sum(axis=0) if ctx.needs_input_grad[2] else None
        return dx.reshape(grad.shape) if want_dx else None, dw, db, None, None


def _scale(invstd, weight, per: int):
    """(samples, groups) invstd -> (samples, C, 1) factors invstd (times weight)."""
    scale = np.repeat(invstd, per, axis=1)
    if weight is not None:
        scale *= weight
    return scale[:, :, None]
