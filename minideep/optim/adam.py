"""Adam: adaptive moment estimation (Kingma & Ba, 2015)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .optimizer import Optimizer


class Adam(Optimizer):
    r"""Adam, PyTorch's formulation.

    For each parameter :math:`\theta` with gradient :math:`g`, at step ``t`` = 1, 2, ...
    (``γ`` = lr, ``λ`` = weight_decay)::

        g  ← g + λ θ                               (L2 penalty, if λ ≠ 0)
        m  ← β1 m + (1 − β1) g                     (first moment, mean of g)
        v  ← β2 v + (1 − β2) g²                    (second moment, mean of g²)
        v̂  ← max(v̂, v)   with amsgrad, else v̂ = v
        θ  ← θ − γ / (1 − β1ᵗ) · m / (sqrt(v̂) / sqrt(1 − β2ᵗ) + ε)

    ``m`` and ``v`` start at zero, so early on they are biased towards zero; dividing by
    ``1 − βᵗ`` removes that bias. Note where ``ε`` goes: it is added to the *bias-corrected*
    ``sqrt(v̂)``, as in PyTorch (and the paper), not to ``sqrt(v)`` before correction.
    ``weight_decay`` here is an L2 penalty added to the gradient; :class:`AdamW` decays the
    weights directly instead.
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
    ):
        if lr < 0:
            raise ValueError(f"invalid learning rate: {lr}")
        if eps < 0:
            raise ValueError(f"invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid beta parameter at index {i}: {beta}")
        if weight_decay < 0:
            raise ValueError(f"invalid weight_decay value: {weight_decay}")
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        xp = p.xp
        state = {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        return state

    def _update(self, p, grad, state, group):
        xp = p.xp
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        weight_decay = group["weight_decay"]
        state["step"] += 1
        t = state["step"]

        if weight_decay != 0:
            if self.decoupled_weight_decay:
                p.data *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * p.data

        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        grad_sq = grad * grad
        grad_sq *= 1 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += grad_sq
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second_moment = state["max_exp_avg_sq"]
        else:
            second_moment = exp_avg_sq

        step_size = lr / (1 - beta1**t)
        denom = xp.sqrt(second_moment)
        denom /= math.sqrt(1 - beta2**t)
        denom += group["eps"]
        update = xp.divide(exp_avg, denom, out=denom)  # reuse denom's memory
        update *= step_size
        p.data -= update
