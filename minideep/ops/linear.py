"""The fully connected layer as one fused op: y = x @ W.T + b."""

from __future__ import annotations

from ..autograd import Function
from ..tensor import Tensor


class Linear(Function):
    """y = x W^T + b.

    x: (*, in), W: (out, in), b: (out,) or None -> y: (*, out).
    dx = dy W;  dW = dy^T x and db = sum of dy, both summed over every leading dim.
    """

    @staticmethod
    def forward(ctx, x, w, b):
        y = x @ w.T
        if b is not None:
            y += b
        ctx.save_for_backward(x, w)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1])  # (rows, out)
        dx = grad @ w if ctx.needs_input_grad[0] else None
        dw = g2.T @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        db = g2.sum(axis=0) if ctx.needs_input_grad[2] else None
        return dx, dw, db


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x: (*, in_features), weight: (out_features, in_features), bias: (out_features,)
    -> (*, out_features)."""
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input {tuple(x.shape)} does not match weight {tuple(weight.shape)} "
            f"(expected the input's last dim to be in_features = {weight.shape[-1]})"
        )
    return Linear.apply(x, weight, bias)
