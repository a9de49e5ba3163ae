"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from collections.abc import Iterable

from .optimizer import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), PyTorch's formulation.

    For each parameter :math:`\theta` with gradient :math:`g` (``α`` = alpha, ``γ`` = lr,
    ``λ`` = weight_decay, ``μ`` = momentum)::

        g ← g + λ θ                           (if λ ≠ 0)
        s ← α s + (1 − α) g²                  (running mean of g²)
        a ← sqrt(s) + ε
        with centered:  ḡ ← α ḡ + (1 − α) g,   a ← sqrt(s − ḡ²) + ε   (a running std)
        with μ > 0:     b ← μ b + g / a,       θ ← θ − γ b
        otherwise:      θ ← θ − γ g / a

    ``ε`` is added *outside* the square root. ``s``, ``ḡ`` and ``b`` start at zero.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
    ):
        if lr < 0:
            raise ValueError(f"invalid learning rate: {lr}")
        if eps < 0:
            raise ValueError(f"invalid epsilon value: {eps}")
        if momentum < 0:
            raise ValueError(f"invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"invalid weight_decay value: {weight_decay}")
        if alpha < 0:
            raise ValueError(f"invalid alpha value: {alpha}")
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        xp = p.xp
        state = {"step": 0, "square_avg": xp.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = xp.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = xp.zeros_like(p.data)
        return state

    def _update(self, p, grad, state, group):
        xp = p.xp
        alpha = group["alpha"]
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data

        square_avg = state["square_avg"]
        grad_sq = grad * grad
        grad_sq *= 1 - alpha
        square_avg *= alpha
        square_avg += grad_sq
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * grad
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += group["eps"]

        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += grad / avg
            p.data -= group["lr"] * buf
        else:
            update = xp.divide(grad, avg, out=avg)  # reuse avg's memory
            update *= group["lr"]
            p.data -= update
