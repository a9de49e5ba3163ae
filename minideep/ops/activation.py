"""Activations and the softmax family.

``softmax`` and ``log_softmax`` subtract the row maximum before exponentiating, so they
stay finite for logits of any magnitude; ``sigmoid`` only ever exponentiates a
non-positive number for the same reason.
"""

from __future__ import annotations

from .. import fast
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor


class ReLU(Function):
    """out = max(a, 0);  dout/da = 1 where a > 0, else 0 (0 at a = 0, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a):
        if fast.activation.relu_applies(a):  # chunked, against zeros: fast/activation.py
            out = fast.activation.relu_forward(a)
        else:
            out = get_array_module(a).maximum(a, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        if fast.activation.relu_applies(grad):
            return fast.activation.relu_backward(grad, out)
        return grad * (out > 0)


class LeakyReLU(Function):
    """out = a if a > 0 else slope * a;  dout/da = 1 or slope."""

    @staticmethod
    def forward(ctx, a, slope):
        xp = get_array_module(a)
        positive = a > 0
        ctx.save_for_backward(positive)
        ctx.slope = slope
        return xp.where(positive, a, a * slope)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return get_array_module(grad).where(positive, grad, grad * ctx.slope), None


class Tanh(Function):
    """out = tanh(a);  dout/da = 1 - out**2."""

    @staticmethod
    def forward(ctx, a):
        out = get_array_module(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


def stable_sigmoid(a):
    """1 / (1 + exp(-a)) on an array, exponentiating only -|a| (no overflow)."""
    xp = get_array_module(a)
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    """out = 1 / (1 + exp(-a));  dout/da = out * (1 - out)."""

    @staticmethod
    def forward(ctx, a):
        out = stable_sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Softmax(Function):
    """out_i = exp(a_i) / sum_j exp(a_j) along ``axis``.

    dL/da = out * (g - sum(g * out)), the Jacobian-vector product of softmax.
    """

    @staticmethod
    def forward(ctx, a, axis):
        xp = get_array_module(a)
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return out * (grad - (grad * out).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """out_i = a_i - log(sum_j exp(a_j)) along ``axis``.

    dL/da = g - softmax(a) * sum(g).
    """

    @staticmethod
    def forward(ctx, a, axis):
        xp = get_array_module(a)
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        xp = get_array_module(out)
        return grad - xp.exp(out) * grad.sum(axis=ctx.axis, keepdims=True), None


# ---------------------------------------------------------------------------


def relu(a: Tensor) -> Tensor:
    return ReLU.apply(a)


def leaky_relu(a: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(a, negative_slope)


def tanh(a: Tensor) -> Tensor:
    return Tanh.apply(a)


def sigmoid(a: Tensor) -> Tensor:
    return Sigmoid.apply(a)


def softmax(a: Tensor, dim: int) -> Tensor:
    return Softmax.apply(a, dim % a.ndim)


def log_softmax(a: Tensor, dim: int) -> Tensor:
    return LogSoftmax.apply(a, dim % a.ndim)
