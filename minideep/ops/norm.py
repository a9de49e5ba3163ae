"""Normalisation: batch, layer and group normalisation as fused ops with hand-written
backwards, and the normalisation of vectors
(``normalize``, ``cosine_similarity``) composed of differentiable ops."""

from __future__ import annotations

import math

import numpy as np

from .. import fast
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .math import where
from .shape import on_no_samples


def update_running_stats(running_mean, running_var, mean, var, momentum: float, n: int):
    """In place: running = (1 - momentum) running + momentum batch, the variance unbiased
    (var n / (n - 1), n values per channel), as PyTorch keeps them."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += (momentum * n / (n - 1)) * var


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
        ctx.fast = fast.norm.batch_norm(x)  # CPU: sums by einsum, rows of C*L (fast/norm.py)
        if ctx.fast:
            return ctx.fast.forward(
                ctx, x, weight, bias, running_mean, running_var, training, momentum, eps
            )
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if training:
            n = x.size // x.shape[1]
            mean = x.mean(axis=axes)
            centred = x - mean.reshape(shape)
            var = (centred * centred).mean(axis=axes)
            if running_mean is not None:
                update_running_stats(running_mean, running_var, mean, var, momentum, n)
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
        if ctx.fast and not ctx.create_graph:
            return ctx.fast.backward(ctx, grad)
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


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last ``k`` axes of x.

    x: (*, *normalized_shape), weight and bias: normalized_shape or None. The statistics
    are each row's own (biased variance over the n = prod(normalized_shape) values), so
    the backward is BatchNorm's with the roles of the axes exchanged:

        dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),

    the means over the normalised axes, with dxhat = dy * weight;
    dweight = sum(dy * xhat) and dbias = sum(dy) over the leading axes.
    With ``create_graph=True`` xhat and invstd are recomputed from the input Tensor.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, k, eps):
        ctx.fast = fast.norm.layer_norm(x)  # CPU: row sums by BLAS, in place (fast/norm.py)
        if ctx.fast:
            return ctx.fast.forward(ctx, x, weight, bias, k, eps)
        axes = tuple(range(x.ndim - k, x.ndim))
        centred = x - x.mean(axis=axes, keepdims=True)
        var = (centred * centred).mean(axis=axes, keepdims=True)
        invstd = 1.0 / get_array_module(x).sqrt(var + eps)
        xhat = centred * invstd
        y = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            y += bias
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.axes, ctx.eps = axes, eps
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.fast and not ctx.create_graph:
            return ctx.fast.backward(ctx, grad)
        xhat, invstd, weight = ctx.saved_tensors
        axes = ctx.axes
        if ctx.create_graph:  # xhat and invstd depend on x: recompute them on the graph
            x = ctx.inputs[0]
            centred = x - x.mean(axis=axes, keepdims=True)
            invstd = ((centred * centred).mean(axis=axes, keepdims=True) + ctx.eps) ** -0.5
            xhat = centred * invstd
        leading = tuple(range(grad.ndim - len(axes)))
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dxhat = grad * weight if weight is not None else grad
            mean_d = dxhat.mean(axis=axes, keepdims=True)
            mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
            dx = invstd * (dxhat - mean_d - xhat * mean_dx)
        if ctx.needs_input_grad[1]:
            dw = (grad * xhat).sum(axis=leading)
        if ctx.needs_input_grad[2]:
            db = grad.sum(axis=leading)
        return dx, dw, db, None, None


class GroupNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, the statistics per sample and group.

    x: (N, C, *); weight, bias: (C,) or None. Each sample's C channels are split into G
    groups of C/G; mean and (biased) var are taken over a group's channels and positions
    (m values), as a layer norm of the (N, G, m) view; weight and bias act per channel.
    The backward is LayerNorm's on the (N, G, m) view, with dxhat = dy * weight:

        dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),

    the means over each group's m values; dweight = sum(dy * xhat), dbias = sum(dy) over
    every axis but 1. With ``create_graph=True`` xhat and invstd are recomputed from the
    input Tensor.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, groups, eps):
        ctx.fast = fast.norm.group_norm(x)  # CPU: fewer passes, in place (fast/norm.py)
        if ctx.fast:
            return ctx.fast.forward(ctx, x, weight, bias, groups, eps)
        grouped = x.reshape(x.shape[0], groups, -1)
        centred = grouped - grouped.mean(axis=2, keepdims=True)
        var = (centred * centred).mean(axis=2, keepdims=True)
        invstd = 1.0 / get_array_module(x).sqrt(var + eps)
        xhat = (centred * invstd).reshape(x.shape)
        per_channel = (1, -1) + (1,) * (x.ndim - 2)
        y = xhat * weight.reshape(per_channel) if weight is not None else xhat.copy()
        if bias is not None:
            y += bias.reshape(per_channel)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.groups, ctx.eps, ctx.per_channel = groups, eps, per_channel
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.fast and not ctx.create_graph:
            return ctx.fast.backward(ctx, grad)
        xhat, invstd, weight = ctx.saved_tensors
        grouped = (grad.shape[0], ctx.groups, -1)
        if ctx.create_graph:  # xhat and invstd depend on x: recompute them on the graph
            x = ctx.inputs[0].reshape(grouped)
            centred = x - x.mean(axis=2, keepdims=True)
            invstd = ((centred * centred).mean(axis=2, keepdims=True) + ctx.eps) ** -0.5
            xhat = (centred * invstd).reshape(grad.shape)
        others = (0,) + tuple(range(2, grad.ndim))
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dxhat = grad * weight.reshape(ctx.per_channel) if weight is not None else grad
            dxhat, xh = dxhat.reshape(grouped), xhat.reshape(grouped)
            mean_d = dxhat.mean(axis=2, keepdims=True)
            mean_dx = (dxhat * xh).mean(axis=2, keepdims=True)
            dx = (invstd * (dxhat - mean_d - xh * mean_dx)).reshape(grad.shape)
        if ctx.needs_input_grad[1]:
            dw = (grad * xhat).sum(axis=others)
        if ctx.needs_input_grad[2]:
            db = grad.sum(axis=others)
        return dx, dw, db, None, None


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


def layer_norm(
    x: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise x: (*, *normalized_shape) over its last len(normalized_shape) axes, then
    scale by ``weight`` and shift by ``bias`` (each of shape normalized_shape)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape) :]) != shape or x.ndim < len(shape):
        raise ValueError(
            f"layer_norm: normalized_shape {shape} does not match the last dims of the "
            f"input of shape {tuple(x.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(
                f"layer_norm: {name} has shape {tuple(t.shape)}, expected normalized_shape {shape}"
            )
    if math.prod(shape) == 0:  # rows of no values: an empty result (its graph included)
        y = x * 1.0
        y = y * weight if weight is not None else y
        return y + bias if bias is not None else y
    return LayerNorm.apply(x, weight, bias, len(shape), eps)


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Split the C channels of x: (N, C, *) into ``num_groups`` groups and normalise each
    group of each sample over its channels and positions (a layer norm of the (N, G, -1)
    view), then scale and shift per channel by ``weight``, ``bias``: (C,) (:class:`GroupNorm`)."""
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ValueError(
            f"group_norm: expected an input (N, C, *) with C divisible by num_groups = "
            f"{num_groups}, got shape {tuple(x.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (x.shape[1],):
            raise ValueError(
                f"group_norm: {name} has shape {tuple(t.shape)} but input {tuple(x.shape)} "
                f"has {x.shape[1]} channels"
            )
    if x.shape[0] == 0:
        return on_no_samples(lambda x1: group_norm(x1, num_groups, weight, bias, eps), x)
    return GroupNorm.apply(x, weight, bias, num_groups, eps)


def vector_norm(x: Tensor, p: float = 2, dim: int = -1, keepdim: bool = False) -> Tensor:
    """(sum_i |x_i|^p)^(1/p) along ``dim``, with gradient 0 at a zero vector (PyTorch's
    subgradient there): the root is taken of 1 instead of 0, then replaced by 0."""
    total = (x * x if p == 2 else x.abs() ** p).sum(dim=dim, keepdim=True)
    zero = total.data == 0
    if zero.any():
        norm = where(zero, 0.0, where(zero, 1.0, total) ** (1 / p))
    else:
        norm = total.sqrt() if p == 2 else total ** (1 / p)
    return norm if keepdim else norm.squeeze(dim)


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along ``dim``: unit vectors (zero vectors stay zero)."""
    return x / vector_norm(x, p, dim, keepdim=True).clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum((x1 / max(||x1||, eps)) * (x2 / max(||x2||, eps))) along ``dim`` (broadcast).

    Each vector is divided by its norm before the product, which keeps the result in
    [-1, 1] (PyTorch's formula). PyTorch clamps the norms in place without recording it,
    so the gradient flows through each norm as if it were not clamped; here likewise.
    """
    shape = tuple(np.broadcast_shapes(x1.shape, x2.shape))
    x1, x2 = (x if tuple(x.shape) == shape else x.expand(*shape) for x in (x1, x2))
    dim = dim % len(shape)
    out = None
    for x in (x1, x2):
        norm = vector_norm(x, 2, dim, keepdim=True)
        norm = norm + (norm.clamp(min=eps) - norm).detach()  # the value clamped, not the graph
        out = x / norm if out is None else out * (x / norm)
    return out.sum(dim=dim)
