"""Loss functions, each one fused op with its reduction.

Every loss first computes a per-element loss ``l`` and then reduces it:
``reduction="mean"`` divides the sum by the number of elements (or, for the class losses
with ``weight``, by the total weight of the targets, like PyTorch), ``"sum"`` sums and
``"none"`` returns ``l``. The backward writes dl/dinput per element and scales it by the
upstream gradient the same way.

Large logits are safe: cross-entropy goes through a shifted log-softmax, and the
binary losses only ever exponentiate non-positive numbers or clamp their logarithms,
so |logit| = 1000 gives finite losses and gradients.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .activation import log_softmax
from .math import where
from .norm import vector_norm

REDUCTIONS = ("mean", "sum", "none")


def _reduce(l, reduction: str, denominator=None):
    if reduction == "none":
        return l
    total = l.sum()
    if reduction == "sum":
        return total
    return total / (l.size if denominator is None else denominator)


def _upstream(grad, reduction: str, denominator):
    """The upstream gradient of each element of ``l``: ``grad`` itself for "none", else
    one number (0-d) that broadcasts against ``l`` in the backward's products."""
    if reduction == "mean":
        return grad / denominator
    return grad


def _class_axis(a):
    """``(N, *d) -> (N, 1, *d)``: line ``a`` up with the class axis of ``(N, C, *d)``.

    (A reshape: ``expand_dims`` costs ten times more on the small arrays of a loss.)
    """
    return a.reshape(a.shape[:1] + (1,) + a.shape[1:])


class MSELoss(Function):
    """l = (input - target)^2;  dl/dinput = 2 (input - target) = -dl/dtarget."""

    @staticmethod
    def forward(ctx, a, t, reduction):
        diff = a - t
        ctx.save_for_backward(diff)
        ctx.reduction, ctx.size = reduction, diff.size
        return _reduce(diff * diff, reduction)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        if ctx.create_graph:  # on the graph: the difference of the input Tensors
            diff = ctx.inputs[0] - ctx.inputs[1]
        g = 2 * diff * _upstream(grad, ctx.reduction, ctx.size)
        return g, (-g if ctx.needs_input_grad[1] else None), None


def _class_weights(xp, target, n_classes, weight, ignore_index, dtype):
    """The index to gather with (0 where ignored), the per-element target weight w[t]
    (0 where ignored) and the mask of elements that are not ignored."""
    valid = target != ignore_index
    safe = xp.where(valid, target, 0)
    if target.size:
        low, high = int(safe.min()), int(safe.max())
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise IndexError(f"target {bad} is out of bounds for {n_classes} classes")
    w = valid.astype(dtype) if weight is None else weight.astype(dtype)[safe] * valid
    return safe, w, valid


def _one_hot(xp, index, n_classes, dtype):
    """(N, *d) class indices -> (N, C, *d) one-hot along axis 1."""
    classes = xp.arange(n_classes).reshape((1, -1) + (1,) * (index.ndim - 1))
    return (_class_axis(index) == classes).astype(dtype)


class CrossEntropy(Function):
    """l_i = -sum_c q_ic log softmax(z_i)_c, the target distribution q of sample i being

        q_ic = w_c ((1 - eps) [c = t_i] + eps / C)     (0 for ignored samples)

    (eps = label_smoothing, w the class weights, 1 by default).
    dl_i/dz_ic = softmax(z_i)_c sum_c' q_ic' - q_ic.
    logits: (N, C) or (N, C, d1, ...), target: int64 (N,) or (N, d1, ...).
    "mean" divides by sum_i w_{t_i} over the samples that are not ignored.

    The usual classifier's case, (N, C) logits with plain class targets (no weights, no
    smoothing, none ignored), takes a shortcut with the same result: q is one-hot, so
    l_i = -log softmax(z_i)_{t_i} and dl_i/dz_i = softmax(z_i) - onehot(t_i), read and
    written at the target positions instead of through a dense q: half the array
    operations (``benchmarks/results/fast_paths.md``).
    """

    @staticmethod
    def forward(ctx, z, target, weight, ignore_index, label_smoothing, reduction):
        xp = get_array_module(z)
        n_classes = z.shape[1]
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        ctx.reduction = reduction
        ctx.plain = z.ndim == 2 and weight is None and not label_smoothing and target.size
        if ctx.plain:
            low, high = int(target.min()), int(target.max())
            ctx.plain = 0 <= low and high < n_classes and not low <= ignore_index <= high
        if ctx.plain:  # every target is a class index: pick its log-probability
            rows = xp.arange(target.shape[0])
            ctx.save_for_backward(log_p, rows, target)
            ctx.denominator = target.shape[0]
            return _reduce(-log_p[rows, target], reduction, ctx.denominator)
        safe, w_t, valid = _class_weights(xp, target, n_classes, weight, ignore_index, z.dtype)
        q = _one_hot(xp, safe, n_classes, z.dtype)
        if label_smoothing:
            q = q * (1 - label_smoothing) + label_smoothing / n_classes
        q *= _class_axis(valid)
        if weight is not None:
            q *= weight.astype(z.dtype).reshape((1, -1) + (1,) * (z.ndim - 2))
        l = -(q * log_p).sum(axis=1)
        ctx.save_for_backward(log_p, q)
        ctx.denominator = w_t.sum()
        return _reduce(l, reduction, ctx.denominator)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        g = _upstream(grad, ctx.reduction, ctx.denominator)
        if g.ndim:  # reduction "none": one gradient per sample (and position)
            g = _class_axis(g)
        if ctx.create_graph:  # log_p recomputed on the graph; q is a constant
            log_p = log_softmax(ctx.inputs[0], 1)
            if ctx.plain:
                _, _, target = ctx.saved_tensors
                q = _one_hot(get_array_module(target), target, log_p.shape[1], log_p.dtype)
            else:
                q = ctx.saved_tensors[1]
            return (
                (xp.exp(log_p) * q.sum(axis=1, keepdims=True) - q) * g,
                None,
                None,
                None,
                None,
                None,
            )
        if ctx.plain:  # softmax - onehot
            log_p, rows, target = ctx.saved_tensors
            dz = xp.exp(log_p)
            dz[rows, target] -= 1
            dz *= g
            return dz, None, None, None, None, None
        log_p, q = ctx.saved_tensors
        dz = (xp.exp(log_p) * q.sum(axis=1, keepdims=True) - q) * g
        return dz, None, None, None, None, None


class NLLLoss(Function):
    """l_i = -w_{t_i} logp_{i, t_i};  dl_i/dlogp_ic = -w_{t_i} [c = t_i].

    log_probs: (N, C) or (N, C, d1, ...), target: int64 (N,) or (N, d1, ...);
    "mean" divides by sum_i w_{t_i} over the samples that are not ignored.
    """

    @staticmethod
    def forward(ctx, log_p, target, weight, ignore_index, reduction):
        xp = get_array_module(log_p)
        safe, w_t, _ = _class_weights(xp, target, log_p.shape[1], weight, ignore_index, log_p.dtype)
        picked = xp.take_along_axis(log_p, _class_axis(safe), axis=1).squeeze(1)
        ctx.save_for_backward(safe, w_t)
        ctx.n_classes = log_p.shape[1]
        ctx.reduction, ctx.denominator = reduction, w_t.sum()
        return _reduce(-w_t * picked, reduction, ctx.denominator)

    @staticmethod
    def backward(ctx, grad):
        safe, w_t = ctx.saved_tensors
        g = _upstream(grad, ctx.reduction, ctx.denominator) * w_t
        one_hot = _one_hot(get_array_module(safe), safe, ctx.n_classes, grad.dtype)
        return -one_hot * _class_axis(g), None, None, None, None


class BCEWithLogits(Function):
    """l = w ((1 - t) x + (1 + (pw - 1) t) softplus(-x)), pw the positive-class weight,
    softplus(-x) = log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|)) (never overflows).
    Without pos_weight that is max(x, 0) - x t + log1p(exp(-|x|)).
    dl/dx = w ((1 - t) - (1 + (pw - 1) t) sigmoid(-x));  dl/dt = w ((pw - 1) softplus(-x) - x).
    """

    @staticmethod
    def forward(ctx, x, t, weight, pos_weight, reduction):
        coef, softplus_neg, sigmoid_neg = _logit_terms(x, t, pos_weight)
        l = (1 - t) * x + coef * softplus_neg
        if weight is not None:
            l = l * weight
        ctx.save_for_backward(x, t, weight, pos_weight, coef, softplus_neg, sigmoid_neg)
        ctx.reduction, ctx.shape = reduction, l.shape
        return _reduce(l, reduction)

    @staticmethod
    def backward(ctx, grad):
        x, t, weight, pos_weight, coef, softplus_neg, sigmoid_neg = ctx.saved_tensors
        if ctx.create_graph:  # the terms recomputed from the input Tensors, on the graph
            coef, softplus_neg, sigmoid_neg = _logit_terms(x, t, pos_weight)
        g = _upstream(grad, ctx.reduction, int(np.prod(ctx.shape)))
        if weight is not None:
            g = g * weight
        dx = ((1 - t) - coef * sigmoid_neg) * g
        dt = None
        if ctx.needs_input_grad[1]:
            pw = 1 if pos_weight is None else pos_weight
            dt = ((pw - 1) * softplus_neg - x) * g
        return dx, dt, None, None, None


def _logit_terms(x, t, pos_weight):
    """1 + (pw - 1) t, softplus(-x) and sigmoid(-x), each without overflow."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    softplus_neg = xp.maximum(-x, 0) + xp.log1p(e)
    coef = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
    sigmoid_neg = xp.where(x >= 0, e, 1) / (1 + e)
    return coef, softplus_neg, sigmoid_neg


def _clamped_logs(p):
    """log p and log(1 - p), each at least -100 (as PyTorch clamps them)."""
    xp = get_array_module(p)
    with np.errstate(divide="ignore"):
        return xp.maximum(xp.log(p), -100), xp.maximum(xp.log(1 - p), -100)


class BCE(Function):
    """l = -w (t log p + (1 - t) log(1 - p)), each log clamped at -100 like PyTorch.

    dl/dp = w (p - t) / max(p (1 - p), 1e-12);  dl/dt = w (log(1 - p) - log p).
    """

    @staticmethod
    def forward(ctx, p, t, weight, reduction):
        log_p, log_1mp = _clamped_logs(p)
        l = -(t * log_p + (1 - t) * log_1mp)
        if weight is not None:
            l = l * weight
        ctx.save_for_backward(p, t, weight, log_p, log_1mp)
        ctx.reduction, ctx.shape = reduction, l.shape
        return _reduce(l, reduction)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        p, t, weight, log_p, log_1mp = ctx.saved_tensors
        if ctx.create_graph:
            log_p, log_1mp = _clamped_logs(p)
        g = _upstream(grad, ctx.reduction, int(np.prod(ctx.shape)))
        if weight is not None:
            g = g * weight
        dp = (p - t) / xp.maximum(p * (1 - p), 1e-12) * g
        dt = (log_1mp - log_p) * g if ctx.needs_input_grad[1] else None
        return dp, dt, None, None


class L1Loss(Function):
    """l = |input - target|;  dl/dinput = sign(input - target) = -dl/dtarget (0 at a tie)."""

    @staticmethod
    def forward(ctx, a, t, reduction):
        xp = get_array_module(a)
        diff = a - t
        ctx.save_for_backward(xp.sign(diff))
        ctx.reduction, ctx.size = reduction, diff.size
        return _reduce(xp.abs(diff), reduction)

    @staticmethod
    def backward(ctx, grad):
        (sign,) = ctx.saved_tensors
        g = sign * _upstream(grad, ctx.reduction, ctx.size)
        return g, (-g if ctx.needs_input_grad[1] else None), None


class Huber(Function):
    """l = d^2 / 2 where |d| < delta, else delta (|d| - delta / 2), d = input - target:
    quadratic near 0, linear (with slope delta) beyond.

    dl/dinput = clamp(d, -delta, delta) = -dl/dtarget.
    """

    @staticmethod
    def forward(ctx, a, t, delta, reduction):
        xp = get_array_module(a)
        diff = a - t
        size = xp.abs(diff)
        quadratic = size < delta
        ctx.save_for_backward(diff, quadratic)
        ctx.delta, ctx.reduction, ctx.size = delta, reduction, diff.size
        l = xp.where(quadratic, 0.5 * diff * diff, delta * (size - 0.5 * delta))
        return _reduce(l, reduction)

    @staticmethod
    def backward(ctx, grad):
        diff, quadratic = ctx.saved_tensors
        xp = get_array_module(grad)
        if ctx.create_graph:  # on the graph: the difference of the input Tensors
            diff = ctx.inputs[0] - ctx.inputs[1]
        slope = xp.where(quadratic, diff, ctx.delta * xp.sign(diff))
        g = slope * _upstream(grad, ctx.reduction, ctx.size)
        return g, (-g if ctx.needs_input_grad[1] else None), None, None


class KLDiv(Function):
    """Kullback-Leibler divergence of the distribution ``target`` from exp(input), input
    being log-probabilities:

        l = t (log t - x)   (0 where t = 0),   or with ``log_target``: l = exp(t) (t - x).

    dl/dx = -t (or -exp(t));  dl/dt = log t + 1 - x (or exp(t) (t - x + 1)).
    "batchmean" divides the sum by the batch size (input.shape[0]): the true KL
    divergence per sample; "mean" divides by the number of elements, as PyTorch does.
    """

    @staticmethod
    def forward(ctx, x, t, log_target, reduction):
        ctx.save_for_backward(x, t)
        ctx.log_target, ctx.reduction = log_target, reduction
        ctx.denominator = x.shape[0] if reduction == "batchmean" else x.size
        return _reduce(_kl_terms(x, t, log_target)[0], _plain(reduction), ctx.denominator)

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        xp = get_array_module(grad)
        g = _upstream(grad, _plain(ctx.reduction), ctx.denominator)
        _, p, log_t = _kl_terms(x, t, ctx.log_target)
        dx = -p * g
        dt = None
        if ctx.needs_input_grad[1]:
            dt = (p * (t - x + 1) if ctx.log_target else xp.where(t > 0, log_t + 1 - x, 0.0)) * g
        return dx, dt, None, None


def _plain(reduction: str) -> str:
    """The reduction "batchmean" sums like "mean", with its own denominator."""
    return "mean" if reduction == "batchmean" else reduction


def _kl_terms(x, t, log_target):
    """The pointwise loss, the target probability p and log p (0 where p = 0)."""
    xp = get_array_module(x)
    if log_target:
        p = xp.exp(t)
        return p * (t - x), p, t
    log_t = xp.log(xp.where(t > 0, t, 1.0))  # t log t = 0 at t = 0
    return t * (log_t - x), t, log_t


# ---------------------------------------------------------------------------


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _same_shape(name: str, a: Tensor, t: Tensor) -> None:
    if tuple(a.shape) != tuple(t.shape):
        raise ValueError(
            f"{name}: target size {tuple(t.shape)} must be the same as input size {tuple(a.shape)}"
        )


def _array(t):
    return t.data if isinstance(t, Tensor) else t


def _as_target(t, like: Tensor) -> Tensor | float:
    return t if isinstance(t, Tensor) else Tensor(like.xp.asarray(t, dtype=like.dtype))


def _check_classes(name: str, x: Tensor, target: Tensor) -> None:
    if x.ndim < 2 or tuple(target.shape) != (x.shape[0],) + tuple(x.shape[2:]):
        raise ValueError(
            f"{name}: expected input (N, C, *d) and target (N, *d), got input "
            f"{tuple(x.shape)} and target {tuple(target.shape)}"
        )
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold int64 class indices, got dtype {target.dtype}")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error: reduce((input - target)^2)."""
    _check_reduction(reduction)
    return MSELoss.apply(input, _as_target(target, input), reduction)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """log_softmax over classes followed by the negative log-likelihood, fused.

    input: logits (N, C) or (N, C, d1, ...); target: int64 class indices (N,) or
    (N, d1, ...); weight: (C,) per-class weights; targets equal to ``ignore_index``
    contribute nothing; ``label_smoothing`` mixes the one-hot target with uniform.
    """
    _check_reduction(reduction)
    _check_classes("cross_entropy", input, target)
    return CrossEntropy.apply(
        input, target.data, _array(weight), ignore_index, label_smoothing, reduction
    )


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities: -input[i, target[i]] (weighted)."""
    _check_reduction(reduction)
    _check_classes("nll_loss", input, target)
    return NLLLoss.apply(input, target.data, _array(weight), ignore_index, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Sigmoid followed by binary cross-entropy, fused and stable for any logit.

    ``weight`` rescales each element (broadcast); ``pos_weight`` (broadcast along the
    last dim, one per class) weights the positive term.
    """
    _check_reduction(reduction)
    target = _as_target(target, input)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    return BCEWithLogits.apply(input, target, _array(weight), _array(pos_weight), reduction)


def binary_cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy of probabilities in [0, 1]; log clamped at -100 (finite at 0, 1)."""
    _check_reduction(reduction)
    target = _as_target(target, input)
    _same_shape("binary_cross_entropy", input, target)
    return BCE.apply(input, target, _array(weight), reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean absolute error: reduce(|input - target|)."""
    _check_reduction(reduction)
    target = _as_target(target, input)
    _same_shape("l1_loss", input, target)
    return L1Loss.apply(input, target, reduction)


def huber_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0
) -> Tensor:
    """reduce(d^2 / 2 if |d| < delta else delta (|d| - delta / 2)), d = input - target."""
    _check_reduction(reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    target = _as_target(target, input)
    _same_shape("huber_loss", input, target)
    return Huber.apply(input, target, delta, reduction)


def smooth_l1_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    """reduce(d^2 / (2 beta) if |d| < beta else |d| - beta / 2): the Huber loss with
    delta = beta, divided by beta (so its slope is 1 far out); the L1 loss at beta = 0."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    return huber_loss(input, target, reduction, delta=beta) / beta


def kl_div(
    input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False
) -> Tensor:
    """KL divergence sum(t (log t - input)) of the distribution ``target`` from the
    log-probabilities ``input``; reduction "mean" (per element), "batchmean" (per
    sample: the mathematical KL divergence), "sum" or "none"."""
    if reduction not in REDUCTIONS + ("batchmean",):
        raise ValueError(
            f"reduction must be one of {REDUCTIONS + ('batchmean',)}, got {reduction!r}"
        )
    target = _as_target(target, input)
    _same_shape("kl_div", input, target)
    return KLDiv.apply(input, target, log_target, reduction)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """||x1 - x2 + eps||_p along the last dim (eps keeps the norm away from its kink)."""
    return vector_norm(x1 - x2 + eps, p, dim=-1, keepdim=keepdim)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """reduce(max(d(a, p) - d(a, n) + margin, 0)), d the pairwise p-norm distance along the
    last dim; ``swap`` uses min(d(a, n), d(p, n)) as the negative distance.
    anchor, positive, negative: (N, D) or (D,)."""
    _check_reduction(reduction)
    if not anchor.shape == positive.shape == negative.shape:
        raise ValueError(
            f"triplet_margin_loss: anchor {tuple(anchor.shape)}, positive "
            f"{tuple(positive.shape)} and negative {tuple(negative.shape)} must have one shape"
        )
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        d_neg = where(d_swap < d_neg, d_swap, d_neg)
    loss = (d_pos - d_neg + margin).clamp(min=0)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()
