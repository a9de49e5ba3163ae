"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable

from .optimizer import Optimizer


class SGD(Optimizer):
    r"""Stochastic gradient descent, PyTorch's formulation.

    For each parameter :math:`\theta` with gradient :math:`g` (``μ`` = momentum,
    ``τ`` = dampening, ``λ`` = weight_decay, ``γ`` = lr)::

        g ← g + λ θ                          (weight decay, if λ ≠ 0)
        b ← g                   on the first step,
        b ← μ b + (1 − τ) g     afterwards   (momentum buffer, if μ ≠ 0)
        g ← g + μ b  (Nesterov)   or   g ← b
        θ ← θ − γ g

    PyTorch's momentum differs from some textbooks (``v ← μ v − γ g; θ ← θ + v``): the
    learning rate multiplies the buffer instead of being folded into it. The two agree
    while ``lr`` is constant.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
    ):
        if lr < 0:
            raise ValueError(f"invalid learning rate: {lr}")
        if momentum < 0:
            raise ValueError(f"invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def _update(self, p, grad, state, group):
        weight_decay = group["weight_decay"]
        momentum = group["momentum"]
        if weight_decay != 0:
            grad = grad + weight_decay * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad
