"""Fast path of bilinear grid_sample on the CPU (reference: ``ops/sampling.py``).

The reference composes some thirty ops on Tensors (coordinates, four corner weights, one
gather, products and a sum), each a pass over the data and a node of the graph.
:class:`BilinearGridSample` is one Function for 4-d x (both padding modes, both
``align_corners``). The corners' flat positions and weights are computed once per point,
for all channels. Each sample's four corners are read by one ``np.take(mode="wrap")`` of
its (C, H*W) plane (the positions are already clipped, so wrapping changes nothing, and
it skips the bounds checks, some 40% of take's time) and mixed by one ``einsum``; the
corner values stay, in pooled memory, for the grid's gradient. Backward: the x gradient
is one ``bincount`` per (sample, channel) plane over the four corners' positions (no
position index per channel to build), the grid's one ``einsum`` (the sums over channels
of gradient times corner value) and a few products per point. Forward and x gradient are
the reference's arithmetic in its order (the same bits); the grid gradient sums in
another order (rounding). With ``create_graph=True`` the backward is the reference's,
run on its graph (:func:`reference_gradients`). What it saves:
``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from .memory import empty, rows_unbuffered
from .switch import enabled, fast_paths


def grid_sample(x, grid, mode: str):
    """The fast path of ``ops.sampling.grid_sample`` for these arrays, or None."""
    if (
        enabled()
        and mode == "bilinear"
        and isinstance(x, np.ndarray)
        and isinstance(grid, np.ndarray)
        and x.ndim == 4
        and x.dtype.kind == "f"
        and grid.dtype == x.dtype
    ):
        return BilinearGridSample
    return None


def reference_gradients(ctx, grad, reference, n_tensors: int):
    """A whole-Function fast path's backward when a graph of the gradient is built: rerun
    the reference composition ``reference(*inputs)`` on the input Tensors (fast paths
    off) and differentiate it with ``create_graph=True``. Returns one gradient per
    argument (None for the non-Tensor ones after the first ``n_tensors``)."""
    from ..autograd import grad as autograd_grad

    inputs, needs = ctx.inputs, ctx.needs_input_grad
    with fast_paths(False):
        out = reference(*inputs)
    wanted = [t for t, need in zip(inputs[:n_tensors], needs) if need]
    found = iter(autograd_grad(out, wanted, grad, create_graph=True, allow_unused=True))
    grads = [next(found) if need else None for need in needs[:n_tensors]]
    return tuple(grads) + (None,) * (len(inputs) - n_tensors)


def _pixel(coord, size: int, align_corners: bool):
    """``ops.sampling._unnormalize`` on arrays (the same operations, the same bits) and
    d(pixel)/d(coord)."""
    if align_corners:
        return (coord + 1) / 2 * (size - 1), (size - 1) / 2
    return ((coord + 1) * size - 1) / 2, size / 2


class BilinearGridSample(Function):
    """grid_sample(x, grid, "bilinear", padding_mode, align_corners) for x (N, C, H, W),
    grid (N, H_out, W_out, 2), as one Function."""

    @staticmethod
    def forward(ctx, x, grid, padding_mode, align_corners):
        n, c, h, w = x.shape
        length = math.prod(grid.shape[1:3])
        dtype = x.dtype
        axes = []  # height, then width: clipped corner offsets, masked factors, masks, step
        for size, coord, stride in ((h, grid[..., 1], w), (w, grid[..., 0], 1)):
            u, step = _pixel(coord.reshape(n, length), size, align_corners)
            if padding_mode == "border":
                step = ((u >= 0) & (u <= size - 1)).astype(dtype) * step  # clamp's: 1 inside
                u = np.clip(u, 0, size - 1)
            low = np.floor(u)
            frac = u - low
            low = low.astype(np.intp)
            at, masked, masks = [], [], []
            for corner, factor in ((low, 1 - frac), (low + 1, frac)):
                mask = (corner >= 0) & (corner < size)  # zeros padding: outside reads 0
                at.append(np.clip(corner, 0, size - 1) * stride)
                masked.append(mask * factor)  # = factor inside the plane, else 0
                masks.append(mask)
            axes.append((at, masked, masks, step))
        (rows, fv, mv, dv), (cols, fu, mu, du) = axes
        # corners (0,0), (0,1), (1,0), (1,1): flat position, weight fv_i fu_j (masked)
        index = np.empty((n, 4, length), np.intp)
        weight = np.empty((n, 4, length), dtype)
        for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            np.add(rows[i], cols[j], out=index[:, k])
            np.multiply(fv[i], fu[j], out=weight[:, k])
        planes = x.reshape(n, c, h * w)
        keep = ctx.needs_input_grad[1]  # the corner values, for the grid's gradient
        values = empty((n, c, 4, length) if keep else (1, c, 4, length), dtype)  # pooled
        y = empty((n, c, length), dtype)
        for s in range(n):
            vals = values[s if keep else 0]
            np.take(planes[s], index[s].reshape(-1), axis=1, out=vals.reshape(c, -1), mode="wrap")
            np.einsum("ckl,kl->cl", vals, weight[s], out=y[s], optimize=False)
        ctx.save_for_backward(index, weight, values if keep else None)
        ctx.x_shape = x.shape
        ctx.factors = (fv, fu, mv, mu, dv, du)
        ctx.grid_shape = grid.shape
        return y.reshape((n, c) + grid.shape[1:3])

    @staticmethod
    def backward(ctx, grad):
        if ctx.create_graph:
            from ..ops.sampling import grid_sample

            def reference(x, grid, padding_mode, align_corners):
                return grid_sample(x, grid, "bilinear", padding_mode, align_corners)

            return reference_gradients(ctx, grad, reference, 2)
        index, weight, values = ctx.saved_tensors
        n, c, h, w = ctx.x_shape
        length = weight.shape[2]
        g = grad.reshape(n, c, length)
        dx = dgrid = None
        if ctx.needs_input_grad[0]:  # each corner's g * weight, added back where it was read
            dx = empty((n, c, h * w), grad.dtype)
            gw = empty((c, 4, length), grad.dtype)
            for s in range(n):
                at = index[s].reshape(-1)
                with rows_unbuffered(length):  # g's row repeated for the four corners
                    np.multiply(g[s][:, None, :], weight[s], out=gw)
                for ch in range(c):
                    dx[s, ch] = np.bincount(at, gw[ch].reshape(-1), minlength=h * w)
            dx = dx.reshape(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            # dL/dweight_k = sum_c g * value_k; weight_k = fv_i fu_j, where fv = (1 - b, b)
            # and fu = (1 - a, a) times the masks mv, mu of the corners inside the plane
            dw = np.einsum("nckl,ncl->nkl", values, g, optimize=False)
            fv, fu, mv, mu, dv, du = ctx.factors
            d00, d01, d10, d11 = dw[:, 0], dw[:, 1], dw[:, 2], dw[:, 3]
            da = mu[1] * (d01 * fv[0] + d11 * fv[1]) - mu[0] * (d00 * fv[0] + d10 * fv[1])
            db = mv[1] * (d10 * fu[0] + d11 * fu[1]) - mv[0] * (d00 * fu[0] + d01 * fu[1])
            dgrid = np.empty(ctx.grid_shape, grad.dtype)
            dgrid[..., 0] = (da * du).reshape(ctx.grid_shape[:-1])
            dgrid[..., 1] = (db * dv).reshape(ctx.grid_shape[:-1])
        return dx, dgrid, None, None
