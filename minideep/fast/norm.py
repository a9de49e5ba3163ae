"""Fast path of LayerNorm on the CPU (reference: ``ops/norm.py``, ``LayerNorm``).

The reference writes a new array for every operator: about a dozen passes over the
activations forward and backward. :class:`RowLayerNorm` views x as rows of the n
normalised values, takes each row's sums of products with ``einsum`` (no temporary), and
writes the elementwise steps into their output in place. Same formulas; the sums run in
another order, so the results differ by rounding. What it saves:
``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import math

import numpy as np

from .switch import enabled


def layer_norm(x):
    """The fast path of ``ops.norm.LayerNorm`` for ``x``, or None for the reference."""
    if enabled() and isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.ndim >= 2:
        return RowLayerNorm
    return None


class RowLayerNorm:
    """LayerNorm on the rows of ``x.reshape(-1, n)``."""

    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        n = math.prod(x.shape[x.ndim - k :])
        rows = x.reshape(-1, n)
        xhat = rows - rows.mean(axis=1, keepdims=True)
        var = np.einsum("ij,ij->i", xhat, xhat)[:, None] / n
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        xhat *= invstd
        if weight is not None:
            y = xhat * weight.reshape(-1)
            if bias is not None:
                y += bias.reshape(-1)
        else:
            y = xhat + bias.reshape(-1) if bias is not None else xhat.copy()
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.axes, ctx.eps, ctx.n = tuple(range(x.ndim - k, x.ndim)), eps, n
        ctx.shape = x.shape[x.ndim - k :]  # normalized_shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat, invstd, weight = ctx.saved_tensors
        g = grad.reshape(-1, ctx.n)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dxhat = g * weight.reshape(-1) if weight is not None else g.copy()
            mean_d = dxhat.mean(axis=1, keepdims=True)
            mean_dx = np.einsum("ij,ij->i", dxhat, xhat)[:, None] / ctx.n
            dxhat -= mean_d
            dxhat -= xhat * mean_dx.astype(xhat.dtype)
            dxhat *= invstd
            dx = dxhat.reshape(grad.shape)
        if ctx.needs_input_grad[1]:
            dw = np.einsum("ij,ij->j", g, xhat).reshape(ctx.shape)
        if ctx.needs_input_grad[2]:
            db = g.sum(axis=0).reshape(ctx.shape)
        return dx, dw, db, None, None
