"""Batch normalisation as one fused op with a hand-written backward."""

from __future__ import annotations

import math

from ..autograd import Function
from ..tensor import Tensor


class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1).

    x: (N, C), (N, C, L) or (N, C, H, W); weight, bias: (C,) or None.
    In training the statistics are the batch's (biased variance, over every axis but 1,
    n values per channel); otherwise ``running_mean``/``running_var`` are used.
    With xhat = (x - mean) * invstd and dxhat = dy * weight, the training backward is

        dx = invstd / n * (n dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),

    because mean and var depend on x too; in evaluation dx = dxhat * invstd.
    dweight = sum(dy * xhat), dbias = sum(dy).
    ``running_mean``/``running_var`` (arrays) are updated in place in training:
    running = (1 - momentum) running + momentum * batch, with the unbiased batch
    variance (n / (n - 1) var), as PyTorch does.

    With ``create_graph=True`` the backward recomputes xhat and invstd from the input
    Tensor, so that they, too, are nodes of the gradient's graph.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            n = x.size // x.shape[1]
            mean = x.mean(axis=axes)
            centred = x - mean.reshape(shape)
            var = (centred * centred).mean(axis=axes)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += (momentum * n / (n - 1)) * var
        else:
            centred = x - running_mean.reshape(shape)
            var = running_var
        invstd = (1.0 / (var + eps) ** 0.5).astype(x.dtype).reshape(shape)
        xhat = centred * invstd
        y = xhat * weight.reshape(shape) if weight is not None else xhat.copy()
        if bias is not None:
            y += bias.reshape(shape)
        ctx.save_for_backward(xhat, invstd, weight, None if training else running_mean)
        ctx.training, ctx.axes, ctx.shape, ctx.eps = training, axes, shape, eps
        return y

    @staticmethod
    def backward(ctx, grad):
        xhat, invstd, weight, running_mean = ctx.saved_tensors
        axes = ctx.axes
        if ctx.create_graph:  # xhat and invstd depend on x: recompute them on the graph
            x = ctx.inputs[0]
            if ctx.training:
                centred = x - x.mean(axis=axes, keepdims=True)
                invstd = ((centred * centred).mean(axis=axes, keepdims=True) + ctx.eps) ** -0.5
            else:
                centred = x - running_mean.reshape(ctx.shape)
            xhat = centred * invstd
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dxhat = grad * weight.reshape(ctx.shape) if weight is not None else grad
            if ctx.training:
                n = math.prod(grad.shape) // grad.shape[1]
                sum_d = dxhat.sum(axis=axes, keepdims=True)
                sum_dx = (dxhat * xhat).sum(axis=axes, keepdims=True)
                dx = (invstd / n) * (n * dxhat - sum_d - xhat * sum_dx)
            else:
                dx = dxhat * invstd
        if ctx.needs_input_grad[1]:
            dw = (grad * xhat).sum(axis=axes)
        if ctx.needs_input_grad[2]:
            db = grad.sum(axis=axes)
        return dx, dw, db, None, None, None, None, None


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of x: (N, C, *) with batch statistics (``training``) or the
    running ones; in training the running statistics, when given, are updated in place.
    Without running statistics the batch statistics are always used."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input (N, C, *), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(
                f"batch_norm: {name} has shape {tuple(t.shape)} but input {tuple(x.shape)} "
                f"has {channels} channels"
            )
    training = training or running_mean is None
    if training and x.numel() // channels < 2:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input "
            f"of shape {tuple(x.shape)}"
        )
    rm = running_mean.data if running_mean is not None else None
    rv = running_var.data if running_var is not None else None
    return BatchNorm.apply(x, weight, bias, rm, rv, training, momentum, eps)
