"""Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""

from __future__ import annotations

from ..autograd import Function
from ..backend import default_rng
from ..tensor import Tensor


class Dropout(Function):
    """y = x * mask, mask = keep / (1 - p) with keep ~ Bernoulli(1 - p);  dx = dy * mask.

    Scaling at training time keeps E[y] = x, so evaluation is the identity.
    """

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Randomly zero elements of x with probability ``p`` (identity when not training).

    The mask is drawn from minideep's generator for x's device (``md.manual_seed``).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return x
    xp = x.xp
    if p == 1.0:
        mask = xp.zeros(x.shape, dtype=x.dtype)
    else:
        keep = default_rng(x.device).random(x.shape, dtype=xp.float32) >= p
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(x, mask)
