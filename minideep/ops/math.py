"""Elementwise arithmetic and matrix product (plus masking: where, masked_fill, triu/tril).

Each op is a :class:`~minideep.autograd.Function`: ``forward`` computes on arrays,
``backward`` turns dL/dout into dL/dinput using the derivative in the docstring.
Binary ops broadcast like NumPy; their backward returns gradients of the broadcast
shape and the engine sums them back to each input's shape (``autograd.unbroadcast``).
A Python number on either side is passed through as a constant.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor


class Add(Function):
    """out = a + b;  dout/da = 1, dout/db = 1."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """out = a - b;  dout/da = 1, dout/db = -1."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """out = a * b;  dout/da = b, dout/db = a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = grad * b if ctx.needs_input_grad[0] else None
        gb = grad * a if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """out = a / b;  dout/da = 1 / b, dout/db = -a / b**2."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = grad / b if ctx.needs_input_grad[0] else None
        gb = -grad * a / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """out = -a;  dout/da = -1."""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """out = a ** b;  dout/da = b * a**(b-1), dout/db = a**b * log(a)."""

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        ga = grad * b * a ** (b - 1) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            xp = get_array_module(out)
            gb = grad * out * xp.log(a)
        return ga, gb


class MatMul(Function):
    """out = a @ b for ``a: (..., n, k)``, ``b: (..., k, m)`` -> ``(..., n, m)``.

    dL/da = g @ b^T,  dL/db = a^T @ g. Batch dimensions broadcast; the engine sums the
    gradients back over them. (1-d operands are handled by :func:`matmul`.)
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = grad @ b.swapaxes(-1, -2) if ctx.needs_input_grad[0] else None
        gb = a.swapaxes(-1, -2) @ grad if ctx.needs_input_grad[1] else None
        return ga, gb


class Exp(Function):
    """out = exp(a);  dout/da = exp(a) = out."""

    @staticmethod
    def forward(ctx, a):
        out = get_array_module(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    """out = log(a);  dout/da = 1 / a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Log1p(Function):
    """out = log(1 + a), accurate for small a;  dout/da = 1 / (1 + a)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).log1p(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (1 + a)


class Sqrt(Function):
    """out = sqrt(a);  dout/da = 1 / (2 sqrt(a))."""

    @staticmethod
    def forward(ctx, a):
        out = get_array_module(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Abs(Function):
    """out = |a|;  dout/da = sign(a) (0 at a = 0, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * get_array_module(a).sign(a)


class Clamp(Function):
    """out = min(max(a, low), high);  dout/da = 1 where low <= a <= high, else 0.

    At the boundaries the gradient is 1, as in PyTorch.
    """

    @staticmethod
    def forward(ctx, a, low, high):
        xp = get_array_module(a)
        inside = True  # where the gradient passes: low <= a <= high
        if low is not None:
            inside = a >= low
        if high is not None:
            inside = inside & (a <= high)
        ctx.save_for_backward(inside)
        return xp.clip(a, low, high)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


class Where(Function):
    """out = cond ? a : b;  the gradient goes to ``a`` where cond holds, else to ``b``."""

    @staticmethod
    def forward(ctx, cond, a, b):
        xp = get_array_module(cond)
        ctx.save_for_backward(cond)
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        xp = get_array_module(grad)
        ga = xp.where(cond, grad, 0) if ctx.needs_input_grad[1] else None
        gb = xp.where(cond, 0, grad) if ctx.needs_input_grad[2] else None
        return None, ga, gb


class Maximum(Function):
    """out = max(a, b) elementwise;  the gradient goes to the larger input, split 0.5/0.5
    where a == b (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return get_array_module(a).maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return _to_the_winner(grad, a, b, ctx.needs_input_grad, larger=True)


class Minimum(Function):
    """out = min(a, b) elementwise;  the gradient goes to the smaller input, split 0.5/0.5
    where a == b (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return get_array_module(a).minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return _to_the_winner(grad, a, b, ctx.needs_input_grad, larger=False)


def _to_the_winner(grad, a, b, needs, larger: bool):
    """The gradients (for a, for b) of max(a, b) (``larger``) or min(a, b): all of
    ``grad`` to the input that was picked, half to each where a == b."""
    xp = get_array_module(grad)
    shared = xp.where(a == b, grad * 0.5, grad)
    ga = xp.where((a < b) if larger else (a > b), 0, shared) if needs[0] else None
    gb = xp.where((b < a) if larger else (b > a), 0, shared) if needs[1] else None
    return ga, gb


class Sin(Function):
    """out = sin(a);  dout/da = cos(a)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).sin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * get_array_module(grad).cos(a)


class Cos(Function):
    """out = cos(a);  dout/da = -sin(a)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).cos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return -grad * get_array_module(grad).sin(a)


class Cast(Function):
    """out = a converted to ``dtype``;  the gradient is converted back to a's dtype."""

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return Cast.run(grad, ctx.dtype), None


class ToDevice(Function):
    """out = a copied to another device;  the gradient is copied back."""

    @staticmethod
    def forward(ctx, a, device):
        from ..backend import device_of, to_device

        ctx.device = device_of(a)
        return to_device(a, device)

    @staticmethod
    def backward(ctx, grad):
        return ToDevice.run(grad, ctx.device), None


# ---------------------------------------------------------------------------
# Functional forms (also the Tensor methods and operators).


def _operands(a, b):
    """Apply PyTorch's rule for a Python float with an integer tensor: compute in float32.

    (A Python float never promotes a float32 tensor; NumPy 2 already agrees there.)
    """
    if type(b) is float and isinstance(a, Tensor) and a.data.dtype.kind in "iub":
        a = a.float()
    elif type(a) is float and isinstance(b, Tensor) and b.data.dtype.kind in "iub":
        b = b.float()
    return a, b


def add(a, b) -> Tensor:
    return Add.apply(*_operands(a, b))


def sub(a, b) -> Tensor:
    return Sub.apply(*_operands(a, b))


def mul(a, b) -> Tensor:
    return Mul.apply(*_operands(a, b))


def div(a, b) -> Tensor:
    a, b = _operands(a, b)
    # true division of integers gives float32 in PyTorch (float64 in NumPy)
    if isinstance(a, Tensor) and a.data.dtype.kind in "iub":
        a = a.float()
    elif isinstance(b, Tensor) and b.data.dtype.kind in "iub" and not isinstance(a, Tensor):
        b = b.float()
    return Div.apply(a, b)


def neg(a: Tensor) -> Tensor:
    return Neg.apply(a)


def pow(a, exponent) -> Tensor:
    return Pow.apply(a, exponent)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: a 1-d operand is a row (left) or column (right)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: both arguments need at least one dimension, got a 0-d tensor")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ValueError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
            f"({ka} != {kb})"
        )
    if a.ndim == 1:
        return matmul(a.unsqueeze(0), b).squeeze(-2)
    if b.ndim == 1:
        return matmul(a, b.unsqueeze(1)).squeeze(-1)
    return MatMul.apply(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product: ``a: (B, n, k)`` @ ``b: (B, k, m)`` -> ``(B, n, m)``, no
    broadcasting (that is :func:`matmul`)."""
    if a.ndim != 3 or b.ndim != 3:
        raise ValueError(
            f"bmm: both arguments must be 3-d, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ValueError(
            f"bmm: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match: expected b of "
            f"shape ({a.shape[0]}, {a.shape[2]}, m)"
        )
    return MatMul.apply(a, b)


def exp(a: Tensor) -> Tensor:
    return Exp.apply(a)


def log(a: Tensor) -> Tensor:
    return Log.apply(a)


def log1p(a: Tensor) -> Tensor:
    return Log1p.apply(a)


def sqrt(a: Tensor) -> Tensor:
    return Sqrt.apply(a)


def sin(a: Tensor) -> Tensor:
    return Sin.apply(a)


def cos(a: Tensor) -> Tensor:
    return Cos.apply(a)


def maximum(a, b) -> Tensor:
    """Elementwise maximum (broadcasting); ties share the gradient equally."""
    return Maximum.apply(*_operands(a, b))


def minimum(a, b) -> Tensor:
    """Elementwise minimum (broadcasting); ties share the gradient equally."""
    return Minimum.apply(*_operands(a, b))


def abs(a: Tensor) -> Tensor:
    return Abs.apply(a)


def clamp(a: Tensor, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(a, min, max)


def where(condition, a, b) -> Tensor:
    """Elements of ``a`` where ``condition`` is true, else of ``b``."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    return Where.apply(cond, a, b)


def masked_fill(a: Tensor, mask, value) -> Tensor:
    """``value`` where the boolean ``mask`` (broadcast against ``a``) is true, else ``a``.

    ``value``: a number (converted to a's dtype) or a 0-d Tensor (which gets the gradient
    of the filled positions)."""
    cond = mask.data if isinstance(mask, Tensor) else mask
    if getattr(cond, "dtype", None) is None or cond.dtype.kind != "b":
        raise TypeError(
            f"masked_fill: the mask must be a bool tensor, got {getattr(cond, 'dtype', cond)!r}"
        )
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(
                f"masked_fill: value must be a number or a 0-d tensor, got a tensor of shape "
                f"{tuple(value.shape)}"
            )
    else:
        value = a.xp.asarray(value, dtype=a.dtype)
    return Where.apply(cond, value, a)


def _triangle(a: Tensor, diagonal: int, upper: bool, name: str) -> Tensor:
    """``a`` with the elements off the triangle (of the last two dims) set to zero."""
    if a.ndim < 2:
        raise ValueError(
            f"{name}: the input needs at least 2 dimensions, got shape {tuple(a.shape)}"
        )
    xp = a.xp
    rows, cols = a.shape[-2:]
    offset = xp.arange(cols)[None, :] - xp.arange(rows)[:, None]  # j - i
    keep = offset >= diagonal if upper else offset <= diagonal
    return Where.apply(keep, a, xp.zeros((), dtype=a.dtype))


def triu(a: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle: elements (i, j) with j - i >= ``diagonal`` kept, others zero."""
    return _triangle(a, diagonal, True, "triu")


def tril(a: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle: elements (i, j) with j - i <= ``diagonal`` kept, others zero."""
    return _triangle(a, diagonal, False, "tril")


def cast(a: Tensor, dtype) -> Tensor:
    if a.data.dtype == dtype:
        return a
    return Cast.apply(a, dtype)


def to_device(a: Tensor, device: str) -> Tensor:
    if a.device == device:
        return a
    return ToDevice.apply(a, device)
