"""Fast path of the attention weights on the CPU (reference: ``ops/attention.py``,
``attention_weights``: a scale, a transpose, a product, a mask, a softmax, a node each).

:class:`SoftmaxScores` is one Function for softmax(Q K^T * scale + M): the scaled
queries (the reference's first op, the same bits) times K^T in one batched product, the
mask added and the softmax computed in place in the scores array (the row maxima by
halving the rows, :func:`row_max`), rows whose every key is masked set to zero weights
as the reference does. Backward: one pass over the weights, dS = P * (dP - sum(dP * P)),
then dQ = dS K * scale and dK = (Q scale)^T dS as the reference's products compute them.
Forward the same bits; the backward's row sums run in another order (rounding). With
``create_graph=True`` the backward is the reference's, run on its graph. What it saves:
``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from .sampling import reference_gradients
from .switch import enabled


def attention_weights(query, key, mask):
    """The fast path of ``ops.attention.attention_weights`` for these arrays, or None."""
    if (
        enabled()
        and isinstance(query, np.ndarray)
        and isinstance(key, np.ndarray)
        and query.dtype.kind == "f"
        and key.dtype == query.dtype
        and (mask is None or (isinstance(mask, np.ndarray) and mask.dtype == query.dtype))
    ):
        return SoftmaxScores
    return None


def row_max(a):
    """``a.max(axis=-1, keepdims=True)`` by halving the rows while their length is even:
    NumPy's max along a short last axis is slow, its elementwise maximum is not."""
    n, m = a.shape[-1], a
    while n % 2 == 0 and n > 1:
        n //= 2
        m = np.maximum(m[..., :n], m[..., n : 2 * n])
    return m.max(axis=-1, keepdims=True) if n > 1 else m


class SoftmaxScores(Function):
    """softmax(query * scale @ key^T + mask) along the keys, as one Function."""

    @staticmethod
    def forward(ctx, query, key, mask, scale):
        scaled = query * scale
        p = scaled @ key.swapaxes(-1, -2)  # the scores, then the weights, in place
        dead = None
        if mask is not None:
            if np.broadcast_shapes(p.shape, mask.shape) == p.shape:
                p += mask
            else:  # the mask broadcasts the scores to more dimensions
                p = p + mask
            dead = np.isneginf(p).all(axis=-1, keepdims=True)  # every key masked out
            if dead.any():
                p[np.broadcast_to(dead, p.shape)] = 0.0
            else:
                dead = None
        p -= row_max(p)
        np.exp(p, out=p)
        p /= p.sum(axis=-1, keepdims=True)
        if dead is not None:
            p[np.broadcast_to(dead, p.shape)] = 0.0
        ctx.save_for_backward(scaled, key, p)
        ctx.scale = scale
        return p

    @staticmethod
    def backward(ctx, grad):
        if ctx.create_graph:
            from ..ops.attention import attention_weights as reference

            return reference_gradients(ctx, grad, reference, 3)
        scaled, key, p = ctx.saved_tensors
        ds = grad - np.einsum("...j,...j->...", grad, p, optimize=False)[..., None]
        ds *= p  # dS = P * (dP - sum(dP * P)); 0 where P is (masked keys, dead rows)
        dq = dk = dmask = None
        if ctx.needs_input_grad[0]:
            dq = ds @ key
            dq *= ctx.scale
        if ctx.needs_input_grad[1]:
            dk = (scaled.swapaxes(-1, -2) @ ds).swapaxes(-1, -2)
        if ctx.needs_input_grad[2]:
            dmask = ds
        return dq, dk, dmask, None
