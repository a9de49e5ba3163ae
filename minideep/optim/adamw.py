"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

from __future__ import annotations

from collections.abc import Iterable

from .adam import Adam


class AdamW(Adam):
    r"""Adam whose weight decay shrinks the weights directly, PyTorch's formulation.

    Each step first decays the parameter, ``θ ← θ (1 − γ λ)`` (``γ`` = lr,
    ``λ`` = weight_decay), then takes the plain :class:`Adam` step with no penalty in the
    gradient. With Adam's L2 penalty the decay term ``λ θ`` would be divided by
    ``sqrt(v̂)`` like the rest of the gradient, so weights with large gradients would be
    decayed less; decoupling makes the decay the same for every weight.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
