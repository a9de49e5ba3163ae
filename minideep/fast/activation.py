"""Fast paths of the activations on the CPU (reference: ``ops/activation.py``).

The references write a new array for every operator, so an activation makes a dozen or
more passes over memory (and fresh big arrays cost page faults). Here each one runs over
the flattened array one piece of :data:`PIECE` elements at a time, every step written in
place into a few scratch pieces that stay in the core's cache, into pooled memory.

* ReLU: ``maximum`` against a shared read-only block of zeros (NumPy's SIMD loop for
  ``maximum`` runs only when both operands are arrays), chunked; the backward is the
  reference's ``grad * (out > 0)``, chunked. Same values to the bit.
* Tanh, LeakyReLU, ELU, Softplus, the backwards of Sigmoid and SiLU: the reference's
  arithmetic, in place, with the ``where`` selections (slow in NumPy: a branch per
  element) replaced by ``maximum`` of the two candidates where that picks the same one
  (see each function); Softplus keeps exp(-|beta x|) for its backward. Same values to
  the bit. The sigmoid of Sigmoid's and SiLU's forward is 1 / (1 + exp(-x)) (in four
  passes, not eight), equal to the reference to rounding (3 ulp, tested). Arrays under
  :data:`MIN_SIZE` elements take the references (as fast, in fewer calls).
* GELU: the tanh form is the reference's arithmetic regrouped (to rounding); the exact
  form in float32 evaluates Phi(x) = (1 + erf(x / sqrt 2)) / 2 as one rational function
  (Eigen's float32 erf, a 9/12-degree minimax interpolant, rescaled to x), accurate to
  4 float32 ulp of Phi, and saves Phi for the backward. float64 keeps the reference's
  ``erf_array``, in pieces, computed once instead of twice (same values to the bit).

What each saves: ``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import math

import numpy as np

from .memory import chunk_rows, constant_to_read, empty_like, for_each_chunk, zeros_to_read
from .switch import enabled

PIECE = 1 << 16  # elements per piece (256 KB of float32): an op's pieces fit a core's L2
MIN_SIZE = 1 << 12  # below this many elements the references are as fast (fewer calls)


def applies(a, *others, min_size=None) -> bool:
    """``a`` a CPU float array of at least one dimension and ``min_size`` elements
    (:data:`MIN_SIZE`), ``others`` CPU arrays of its shape and dtype, fast paths on."""
    if not (enabled() and isinstance(a, np.ndarray) and a.ndim > 0 and a.dtype.kind == "f"):
        return False
    if a.size < (MIN_SIZE if min_size is None else min_size):
        return False
    return all(
        isinstance(b, np.ndarray) and b.dtype == a.dtype and b.shape == a.shape for b in others
    )


def relu_applies(a) -> bool:
    """:func:`applies` to ``a``, from one piece up (a single pass: smaller ones gain nothing)."""
    return applies(a, min_size=PIECE)


def tanh_applies(grad, out) -> bool:
    """:func:`applies` to the backward's arrays, from one piece up (as ReLU)."""
    return applies(grad, out, min_size=PIECE)


def _each_piece(fn, *arrays, scratch=0, masks=0):
    """Call ``fn(views, tmp)`` on each piece: ``views`` the pieces of the flattened
    ``arrays``, ``tmp`` ``scratch`` arrays of the piece's size and dtype, then ``masks``
    bool ones (reused from piece to piece)."""
    flat = [a.reshape(-1) for a in arrays]
    n = flat[0].size
    if n == 0:
        return
    step = min(n, PIECE)
    tmp = [np.empty(step, flat[0].dtype) for _ in range(scratch)]
    tmp += [np.empty(step, bool) for _ in range(masks)]
    for start in range(0, n, step):
        i = slice(start, start + step)
        views = [f[i] for f in flat]
        m = len(views[0])
        fn(views, [t[:m] for t in tmp] if m < step else tmp)


def _out(a):
    """A new C-contiguous array like ``a`` (so that its flat view writes into it)."""
    return empty_like(a)


def _constant(value, n, dtype):
    """``n`` copies of ``value`` to read (:func:`memory.constant_to_read`)."""
    return constant_to_read(value, (n,), dtype)


# ---------------------------------------------------------------------------- ReLU


def relu_forward(a):
    """``maximum(a, 0)``."""
    out = empty_like(a)
    zero = zeros_to_read((chunk_rows(a),) + a.shape[1:], a.dtype)
    for_each_chunk(lambda i: np.maximum(a[i], zero[: len(a[i])], out=out[i]), a)
    return out


def relu_backward(grad, out):
    """``grad * (out > 0)``. (Making the mask a float array first, in pieces, was no
    faster: this is about one product's pass over memory.)"""
    dx = empty_like(grad)
    for_each_chunk(lambda i: np.multiply(grad[i], out[i] > 0, out=dx[i]), grad)
    return dx


# ---------------------------------------------------------- sigmoid, SiLU, tanh


def _sigmoid_into(a, s):
    """s = sigmoid(a) = 1 / (1 + exp(-a)): four passes where the reference's overflow-free
    form needs eight. exp(-a) overflows to inf for a below about -88.7 (float32), and then
    1 / inf = 0 (the caller silences the warning): PyTorch's CPU sigmoid gives 0 there as
    well, where the reference gives exp(a), a subnormal number down to a = -103."""
    np.negative(a, out=s)
    np.exp(s, out=s)
    s += 1
    np.divide(1, s, out=s)


def sigmoid_forward(a):
    """``stable_sigmoid(a)``, to rounding (:func:`_sigmoid_into`)."""
    out = _out(a)
    with np.errstate(over="ignore"):
        _each_piece(lambda v, tmp: _sigmoid_into(v[0], v[1]), a, out)
    return out


def sigmoid_backward(grad, out):
    """``grad * out * (1 - out)``."""
    dx = _out(grad)

    def piece(v, tmp):
        g, o, d = v
        np.subtract(1, o, out=tmp[0])
        np.multiply(g, o, out=d)
        d *= tmp[0]

    _each_piece(piece, grad, out, dx, scratch=1)
    return dx


def silu_forward(x):
    """(``x * s``, ``s``), s = ``stable_sigmoid(x)`` to rounding (:func:`_sigmoid_into`)."""
    out, s = _out(x), _out(x)

    def piece(v, tmp):
        _sigmoid_into(v[0], v[2])
        np.multiply(v[0], v[2], out=v[1])

    with np.errstate(over="ignore"):
        _each_piece(piece, x, out, s)
    return out, s


def silu_backward(grad, x, s):
    """``grad * s * (1 + x * (1 - s))``."""
    dx = _out(grad)

    def piece(v, tmp):
        g, xi, si, d = v
        t = tmp[0]
        np.subtract(1, si, out=t)
        t *= xi
        t += 1
        np.multiply(g, si, out=d)
        d *= t

    _each_piece(piece, grad, x, s, dx, scratch=1)
    return dx


def tanh_backward(grad, out):
    """``grad * (1 - out * out)``."""
    dx = _out(grad)

    def piece(v, tmp):
        g, o, d = v
        t = tmp[0]
        np.multiply(o, o, out=t)
        np.subtract(1, t, out=t)
        np.multiply(g, t, out=d)

    _each_piece(piece, grad, out, dx, scratch=1)
    return dx


# ------------------------------------------------------ LeakyReLU, ELU, softplus
# A ``where(mask, a, b)`` costs a branch per element in NumPy; where one of a, b is
# known to be the larger (or the factor 1 is known to be above the other), ``maximum``
# and ``minimum`` pick the same value without one.


def leaky_relu_applies(a, slope, *others) -> bool:
    """:func:`applies`, and 0 <= slope <= 1 (so that a * slope <= a exactly when a > 0)."""
    return applies(a, *others) and 0 <= slope <= 1


def leaky_relu_forward(a, slope):
    """(``where(a > 0, a, a * slope)`` = max(a, a * slope), the mask a > 0)."""
    out, positive = _out(a), np.empty(a.shape, bool)

    def piece(v, tmp):
        ai, o, p = v
        np.multiply(ai, slope, out=o)
        np.maximum(ai, o, out=o)
        np.greater(ai, 0, out=p)

    _each_piece(piece, a, out, positive)
    return out, positive


def _where_factor_into(f, positive, other):
    """f = where(positive, 1, other) = max(min(other, 1), [positive]), for other >= 0."""
    np.minimum(other, _constant(1, len(f), f.dtype), out=f)
    np.maximum(f, positive, out=f)


def leaky_relu_backward(grad, positive, slope):
    """``where(positive, grad, grad * slope)`` = grad * max([positive], slope)."""
    dx = _out(grad)

    def piece(v, tmp):
        g, p, d = v
        np.copyto(tmp[0], p)
        np.maximum(tmp[0], _constant(slope, len(g), g.dtype), out=tmp[0])
        np.multiply(g, tmp[0], out=d)

    _each_piece(piece, grad, positive, dx, scratch=1)
    return dx


def elu_applies(x, alpha, *others) -> bool:
    """:func:`applies`, and 0 <= alpha <= 1 (so that alpha expm1(x) >= x for x <= 0)."""
    return applies(x, *others) and 0 <= alpha <= 1


def elu_forward(x, alpha):
    """(``where(x > 0, x, alpha * expm1(min(x, 0)))`` = max(x, alpha expm1(min(x, 0))),
    the mask x > 0)."""
    out, positive = _out(x), np.empty(x.shape, bool)

    def piece(v, tmp):
        xi, o, p = v
        np.minimum(xi, _constant(0, len(xi), xi.dtype), out=o)
        np.expm1(o, out=o)
        if alpha != 1:
            o *= alpha
        np.maximum(xi, o, out=o)
        np.greater(xi, 0, out=p)

    _each_piece(piece, x, out, positive)
    return out, positive


def elu_backward(grad, out, positive, alpha):
    """``where(positive, grad, grad * (out + alpha))``; out + alpha = alpha exp(x) lies in
    [0, alpha] where x <= 0, so the factor is :func:`_where_factor_into`."""
    dx = _out(grad)

    def piece(v, tmp):
        g, o, p, d = v
        f, m = tmp
        np.add(o, alpha, out=f)
        np.copyto(m, p)
        _where_factor_into(f, m, f)
        np.multiply(g, f, out=d)

    _each_piece(piece, grad, out, positive, dx, scratch=2)
    return dx


def softplus_applies(x, beta) -> bool:
    """:func:`applies`, and beta > 0."""
    return applies(x) and beta > 0


def _copy_where(dst, src, mask):
    """dst[mask] = src[mask], for a mask that is mostly False (the linear part)."""
    if mask.any():
        at = np.flatnonzero(mask)
        dst[at] = src[at]


def softplus_forward(x, beta, threshold):
    """(out, z > threshold, e = exp(-|z|)) of the reference, z = beta x; ``e`` is kept
    for the backward's sigmoid(z)."""
    out, linear, e = _out(x), np.empty(x.shape, bool), _out(x)

    def piece(v, tmp):
        xi, o, lin, ei = v
        z = tmp[0]
        np.multiply(xi, beta, out=z)
        np.greater(z, threshold, out=lin)
        np.abs(z, out=ei)
        np.negative(ei, out=ei)
        np.exp(ei, out=ei)
        np.log1p(ei, out=o)
        np.maximum(z, _constant(0, len(z), z.dtype), out=z)
        o += z
        if beta != 1:
            o /= beta
        _copy_where(o, xi, lin)

    _each_piece(piece, x, out, linear, e, scratch=1)
    return out, linear, e


def softplus_backward(grad, x, linear, e, beta):
    """``where(linear, grad, grad * sigmoid(beta x))``, sigmoid(z) = max(e, [z >= 0]) /
    (1 + e): the reference's ``where(z >= 0, 1, e) / (1 + e)`` (e <= 1), same values."""
    dx = _out(grad)

    def piece(v, tmp):
        g, xi, lin, ei, d = v
        s, mask = tmp
        np.multiply(xi, beta, out=s)
        np.greater_equal(s, 0, out=mask)
        np.copyto(s, mask)
        np.maximum(s, ei, out=s)
        s /= ei + 1
        np.multiply(g, s, out=d)
        _copy_where(d, g, lin)

    _each_piece(piece, grad, x, linear, e, dx, scratch=1, masks=1)
    return dx


# ----------------------------------------------------------------- GELU


# Eigen's float32 erf (``generic_fast_erf_float``): erf(z) = z P(z^2) / Q(z^2) for
# |z| < 3.8325 (where erf rounds to 1 in float32), with monomial coefficients from the
# highest power down. Rescaled here to Phi(x) = 1/2 + x P'(x^2) / Q'(x^2), z = x / sqrt 2:
# P'_k = P_k / (2 sqrt 2 * 2^k), Q'_k = Q_k / 2^k for the coefficient of z^(2k).
_ERF_P = (
    0.00022905065861350646,
    0.0034082910107109506,
    0.050955695062380861,
    0.18520832239976145,
    1.128379143519084,
)
_ERF_Q = (
    -1.1791602954361697e-7,
    0.000023547966471313185,
    0.0010179625278914885,
    0.014070470171167667,
    0.11098505178285362,
    0.49746925110067538,
    1.0,
)
_PHI_P = tuple(c / (2 * math.sqrt(2) * 2 ** (len(_ERF_P) - 1 - k)) for k, c in enumerate(_ERF_P))
_PHI_Q = tuple(c / 2 ** (len(_ERF_Q) - 1 - k) for k, c in enumerate(_ERF_Q))
_PHI_CLAMP = 5.3  # |x| beyond which Phi(x) rounds to 0 or 1 (in float32)


def _horner_into(out, t, coefficients):
    """out = sum_k c_k t^(n-k), coefficients c from the highest power down."""
    np.multiply(t, coefficients[0], out=out)
    out += coefficients[1]
    for c in coefficients[2:]:
        out *= t
        out += c


def normal_cdf_float32_into(x, out, tmp):
    """out = Phi(x), the standard normal CDF, for a float32 ``x`` (flat), with three
    scratch arrays ``tmp`` of its size. Accurate to 4 float32 ulp of 1/2 (tested)."""
    xc, t, q = tmp
    np.clip(x, -_PHI_CLAMP, _PHI_CLAMP, out=xc)
    np.multiply(xc, xc, out=t)
    _horner_into(out, t, _PHI_P)
    out *= xc
    _horner_into(q, t, _PHI_Q)
    out /= q
    out += 0.5
    np.clip(out, 0, 1, out=out)


def normal_cdf_float32(x):
    """Phi(x) on a float32 array (:func:`normal_cdf_float32_into`, in pieces)."""
    out = _out(x)
    _each_piece(lambda v, tmp: normal_cdf_float32_into(v[0], v[1], tmp), x, out, scratch=3)
    return out


def gelu(x, approximate):
    """The fast path of ``ops.activation.GELU`` for ``x``, or None for the reference."""
    if not applies(x, min_size=0):
        return None
    if x.dtype == np.float32 and approximate != "tanh":
        return ExactGELU  # at every size, so that float32 values never depend on it
    if x.size < MIN_SIZE:
        return None
    return TanhGELU if approximate == "tanh" else ReferenceGELU


_SQRT_2PI = math.sqrt(2 * math.pi)


class ExactGELU:
    """x Phi(x) in float32, Phi by :func:`normal_cdf_float32_into`; saves x and Phi."""

    @staticmethod
    def forward(ctx, x):
        out, cdf = _out(x), _out(x)

        def piece(v, tmp):
            xi, o, c = v
            normal_cdf_float32_into(xi, c, tmp)
            np.multiply(xi, c, out=o)

        _each_piece(piece, x, out, cdf, scratch=3)
        ctx.save_for_backward(x, cdf)
        return out

    @staticmethod
    def backward(ctx, grad):
        """grad (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)."""
        x, cdf = ctx.saved_tensors
        dx = _out(grad)

        def piece(v, tmp):
            g, xi, c, d = v
            e = tmp[0]
            np.multiply(xi, xi, out=e)
            e *= -0.5
            np.exp(e, out=e)
            e *= xi
            e *= 1 / _SQRT_2PI
            e += c
            np.multiply(g, e, out=d)

        _each_piece(piece, grad, x, cdf, dx, scratch=1)
        return dx, None


class ReferenceGELU:
    """The reference's float64 GELU (``erf_array``), in pieces that stay in cache, the
    erf computed once: the forward saves Phi(x) = 0.5 (1 + erf) for the backward, which
    the reference computes again. Same values to the bit."""

    @staticmethod
    def forward(ctx, x):
        from ..ops.activation import erf_array

        out, cdf = _out(x), _out(x)

        def piece(v, tmp):
            xi, o, c = v
            e = erf_array(xi * (1 / math.sqrt(2)))
            e += 1
            np.multiply(e, 0.5, out=c)
            np.multiply(0.5 * xi, e, out=o)

        _each_piece(piece, x, out, cdf)
        ctx.save_for_backward(x, cdf)
        return out

    @staticmethod
    def backward(ctx, grad):
        """grad (Phi(x) + x phi(x)), as the reference computes it."""
        x, cdf = ctx.saved_tensors
        dx = _out(grad)

        def piece(v, tmp):
            g, xi, c, d = v
            pdf = np.exp(-0.5 * xi * xi) * (1 / _SQRT_2PI)
            np.multiply(g, c + xi * pdf, out=d)

        _each_piece(piece, grad, x, cdf, dx)
        return dx, None


_GELU_C = math.sqrt(2 / math.pi)
_GELU_K = 0.044715


class TanhGELU:
    """x (1 + tanh(u)) / 2, u = c (x + k x^3) computed as x (c + c k x^2); saves x and
    tanh(u)."""

    @staticmethod
    def forward(ctx, x):
        out, th = _out(x), _out(x)

        def piece(v, tmp):
            xi, o, t = v
            np.multiply(xi, xi, out=t)
            t *= _GELU_C * _GELU_K
            t += _GELU_C
            t *= xi
            np.tanh(t, out=t)
            np.add(t, 1, out=o)
            o *= xi
            o *= 0.5

        _each_piece(piece, x, out, th)
        ctx.save_for_backward(x, th)
        return out

    @staticmethod
    def backward(ctx, grad):
        """grad ((1 + t) / 2 + x (1 - t^2) (c / 2 + 3 c k x^2 / 2)), t = tanh(u)."""
        x, th = ctx.saved_tensors
        dx = _out(grad)

        def piece(v, tmp):
            g, xi, t, d = v
            w, s = tmp
            np.multiply(xi, xi, out=w)
            w *= 1.5 * _GELU_C * _GELU_K
            w += 0.5 * _GELU_C
            w *= xi
            np.multiply(t, t, out=s)
            np.subtract(1, s, out=s)
            w *= s
            np.multiply(t, 0.5, out=s)
            w += s
            w += 0.5
            np.multiply(g, w, out=d)

        _each_piece(piece, grad, x, th, dx, scratch=2)
        return dx, None
