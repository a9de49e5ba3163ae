"""Activations and the softmax family.

``softmax`` and ``log_softmax`` subtract the row maximum before exponentiating, so they
stay finite for logits of any magnitude; ``sigmoid`` only ever exponentiates a
non-positive number for the same reason.

GELU's exact form needs the error function, which NumPy does not have: :func:`erf_array`
computes it from two classical expansions (a power series near 0, a continued fraction
in the tails), to about one unit in the last place of a float64.
"""

from __future__ import annotations

import math

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
        ctx.slope = slope
        if fast.activation.leaky_relu_applies(a, slope):  # no where: fast/activation.py
            out, positive = fast.activation.leaky_relu_forward(a, slope)
            ctx.save_for_backward(positive)
            return out
        xp = get_array_module(a)
        positive = a > 0
        ctx.save_for_backward(positive)
        return xp.where(positive, a, a * slope)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        if fast.activation.leaky_relu_applies(grad, ctx.slope):
            return fast.activation.leaky_relu_backward(grad, positive, ctx.slope), None
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
        if fast.activation.tanh_applies(grad, out):  # in place, in pieces: fast/activation.py
            return fast.activation.tanh_backward(grad, out)
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
        if fast.activation.applies(a):  # 1 / (1 + exp(-a)) in pieces: fast/activation.py
            out = fast.activation.sigmoid_forward(a)
        else:
            out = stable_sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        if fast.activation.applies(grad, out):
            return fast.activation.sigmoid_backward(grad, out)
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
# The error function, and the smooth activations of transformers


def _series_coefficients(bound):
    """The coefficients 2^n / (1 * 3 * ... * (2n + 1)) of the series in :func:`erf_array`,
    as many as |x| < ``bound`` needs: up to the first term below 2^-55 (the sum is >= 1)."""
    coefficients = [1.0]
    while coefficients[-1] * bound ** (2 * len(coefficients) - 2) >= 2.0**-55:
        coefficients.append(coefficients[-1] * 2 / (2 * len(coefficients) + 1))
    return coefficients


# The series runs on bands of |x|, each with the terms its upper end needs (13 below 0.5,
# 40 below 2.5: checked against math.erf in the tests); the continued fraction beyond.
_SERIES_BANDS = tuple((bound, _series_coefficients(bound)) for bound in (0.5, 1, 1.5, 2, 2.5))
_FRACTION_DEPTH = 30  # enough for |x| >= 2.5 to reach float64 rounding


def erf_array(x):
    """erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise on an array.

    Near zero (|x| < 2.5), the power series with positive terms only (no cancellation)

        erf(x) = 2/sqrt(pi) x exp(-x^2) sum_n (2 x^2)^n / (1 * 3 * ... * (2n + 1)),

    summed by Horner's rule in x^2 from the last term, with fewer terms the nearer to 0
    (:data:`_SERIES_BANDS`). In the tails, erf(x) = 1 - erfc(x) with Laplace's continued
    fraction

        erfc(x) = exp(-x^2) / sqrt(pi) * 1 / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))),

    evaluated from the bottom up. Both converge to float64 rounding with the depths above;
    erf is odd, so only |x| is computed.
    """
    xp = get_array_module(x)
    a = xp.abs(x)
    out = xp.zeros_like(a)
    lower = 0.0
    for bound, coefficients in _SERIES_BANDS:
        band = (a >= lower) & (a < bound)
        lower = bound
        if band.any():
            s = a[band]
            t = s * s
            series = xp.full_like(s, coefficients[-1])
            for c in reversed(coefficients[:-1]):
                series *= t
                series += c
            out[band] = (2 / math.sqrt(math.pi)) * s * xp.exp(-t) * series
    far = ~(a < lower)  # (NaN too)
    if far.any():
        s = a[far]
        fraction = s
        for n in range(_FRACTION_DEPTH, 0, -1):
            fraction = s + (n / 2) / fraction
        # (exp(-x^2) underflows to 0 for large |x|: erf is then 1 exactly, as it rounds)
        out[far] = 1 - xp.exp(-s * s) / (math.sqrt(math.pi) * fraction)
    return xp.where(x < 0, -out, out)


class Erf(Function):
    """out = erf(a);  dout/da = 2/sqrt(pi) exp(-a^2)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return erf_array(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * (2 / math.sqrt(math.pi)) * get_array_module(a).exp(-a * a)


_GELU_TANH = math.sqrt(2 / math.pi), 0.044715


class GELU(Function):
    """out = x Phi(x), Phi the standard normal CDF: Phi(x) = (1 + erf(x / sqrt(2))) / 2.

    dout/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
    ``approximate="tanh"``: out = x (1 + tanh(u)) / 2 with u = c (x + k x^3),
    c = sqrt(2/pi), k = 0.044715, and dout/dx = (1 + t) / 2 + x (1 - t^2) c (1 + 3 k x^2) / 2,
    t = tanh(u).
    """

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.approximate = approximate
        ctx.fast = fast.activation.gelu(x, approximate)  # Phi in float32: fast/activation.py
        if ctx.fast:
            return ctx.fast.forward(ctx, x)
        xp = get_array_module(x)
        ctx.save_for_backward(x)
        if approximate == "tanh":
            c, k = _GELU_TANH
            return 0.5 * x * (1 + xp.tanh(c * (x + k * x * x * x)))
        return 0.5 * x * (1 + erf_array(x * (1 / math.sqrt(2))))

    @staticmethod
    def backward(ctx, grad):
        if ctx.fast and not ctx.create_graph:
            return ctx.fast.backward(ctx, grad)
        x = ctx.saved_tensors[0]  # (the fast path also saves Phi(x) or tanh(u))
        xp = get_array_module(x)
        if ctx.approximate == "tanh":
            c, k = _GELU_TANH
            t = xp.tanh(c * (x + k * x * x * x))
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * k * x * x)), None
        cdf = 0.5 * (1 + Erf.run(x * (1 / math.sqrt(2))))
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return grad * (cdf + x * pdf), None


class SiLU(Function):
    """out = x sigmoid(x) (the swish);  dout/dx = s (1 + x (1 - s)), s = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        if fast.activation.applies(x):  # 1 / (1 + exp(-x)) in pieces: fast/activation.py
            out, s = fast.activation.silu_forward(x)
            ctx.save_for_backward(x, s)
            return out
        s = stable_sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        if fast.activation.applies(grad, x, s):
            return fast.activation.silu_backward(grad, x, s)
        if ctx.create_graph:  # s depends on x: recompute it on the graph
            s = stable_sigmoid(x)
        return grad * s * (1 + x * (1 - s))


class Softplus(Function):
    """out = log(1 + exp(beta x)) / beta, and out = x where beta x > threshold (PyTorch's
    switch to the identity, where the two agree to float rounding).

    Computed as (max(z, 0) + log1p(exp(-|z|))) / beta, z = beta x (never overflows).
    dout/dx = sigmoid(beta x), and 1 where beta x > threshold.
    """

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.beta = beta
        if fast.activation.softplus_applies(x, beta):  # in place, in pieces: fast/activation.py
            out, linear, e = fast.activation.softplus_forward(x, beta, threshold)
            ctx.save_for_backward(x, linear, e)  # e = exp(-|beta x|), for sigmoid(beta x)
            return out
        xp = get_array_module(x)
        z = x * beta
        linear = z > threshold
        ctx.save_for_backward(x, linear)
        return xp.where(linear, x, (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / beta)

    @staticmethod
    def backward(ctx, grad):
        x, linear, *e = ctx.saved_tensors
        if e and fast.activation.applies(grad, x):
            return fast.activation.softplus_backward(grad, x, linear, e[0], ctx.beta), None, None
        xp = get_array_module(grad)
        return xp.where(linear, grad, grad * stable_sigmoid(x * ctx.beta)), None, None


class ELU(Function):
    """out = x for x > 0, else alpha (exp(x) - 1);  dout/dx = 1, else alpha exp(x) = out + alpha."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = alpha
        if fast.activation.elu_applies(x, alpha):  # no where: fast/activation.py
            out, positive = fast.activation.elu_forward(x, alpha)
        else:
            xp = get_array_module(x)
            positive = x > 0
            out = xp.where(positive, x, alpha * xp.expm1(xp.minimum(x, 0)))
        ctx.save_for_backward(out, positive)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, positive = ctx.saved_tensors
        if fast.activation.elu_applies(grad, ctx.alpha, out):
            return fast.activation.elu_backward(grad, out, positive, ctx.alpha), None
        xp = get_array_module(grad)
        return xp.where(positive, grad, grad * (out + ctx.alpha)), None


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


def erf(a: Tensor) -> Tensor:
    """The error function, elementwise (differentiable: d erf(a)/da = 2/sqrt(pi) exp(-a^2))."""
    return Erf.apply(a)


def gelu(a: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x), Phi the standard normal CDF; ``approximate="tanh"`` uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(a, approximate)


def silu(a: Tensor) -> Tensor:
    """x * sigmoid(x)."""
    return SiLU.apply(a)


def softplus(a: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, the identity where beta x > threshold."""
    return Softplus.apply(a, beta, threshold)


def elu(a: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, else alpha (exp(x) - 1)."""
    return ELU.apply(a, alpha)
