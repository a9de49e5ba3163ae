"""Training utilities: gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..tensor import Tensor

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the gradients of ``parameters`` so that their joint norm is at most ``max_norm``.

    The joint norm is the norm of all gradients seen as one long vector, which equals the
    norm of the per-parameter norms:

        total = || (||g_1||_p, ||g_2||_p, ...) ||_p      (p = inf: the largest |g|)

    When ``total > max_norm`` every gradient is multiplied by
    ``max_norm / (total + 1e-6)``; otherwise they are left alone. Returns ``total``
    (before clipping) as a 0-d tensor, like PyTorch. Parameters without a gradient are
    skipped. Typical use, between ``backward()`` and ``optimizer.step()``, keeps an RNN's
    exploding gradients in check.

    Gradient arrays may be shared between tensors, so they are replaced by new arrays,
    never scaled in place.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    max_norm, norm_type = float(max_norm), float(norm_type)
    xp = grads[0].xp
    norms = [_norm(g.data.ravel(), norm_type, xp) for g in grads]
    total = _norm(xp.stack(norms), norm_type, xp)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is {float(total)}, so "
            "they cannot be clipped; pass error_if_nonfinite=False to clip anyway"
        )
    clip_coef = max_norm / (float(total) + 1e-6)
    if clip_coef < 1:
        for g in grads:
            g.data = g.data * g.data.dtype.type(clip_coef)
    return Tensor(xp.asarray(total), dtype=total.dtype)


def _norm(vector, p: float, xp):
    """The p-norm of a 1-d array (p = inf: its largest absolute value)."""
    if math.isinf(p):
        return xp.abs(vector).max()
    if p == 2.0:
        return xp.sqrt(xp.dot(vector, vector))
    return (xp.abs(vector) ** p).sum() ** (1.0 / p)
