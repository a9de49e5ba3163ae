"""Gradient checks through modules with a full backward hook: the identity nodes that
carry the hook (``minideep/nn/hooks.py``, ``BackwardHookFunction``) must pass every
gradient on unchanged, whether the hook returns None or hands ``grad_input`` back."""

import minideep as md
from minideep import nn

from . import Case, constant, randn


class _TanhProduct(nn.Module):
    """(x: (N, I), w: (I, O)) -> tanh(x @ w): (N, O)."""

    def forward(self, x, w):
        return (x @ w).tanh()


class _TwoOutputs(nn.Module):
    """(x, c) -> (x * c, sum(x ** 2)): a tuple output, and an input that needs no grad."""

    def forward(self, x, c):
        return x * c, (x * x).sum()


def _hooked(module: nn.Module, returns_grad_input: bool) -> nn.Module:
    def hook(module, grad_input, grad_output):
        return tuple(grad_input) if returns_grad_input else None

    module.register_full_backward_hook(hook)
    return module


def _linear(x):
    md.manual_seed(0)  # the same weights on every forward of the check
    layer = nn.Linear(x.shape[-1], 2).double().to(x.device)
    return _hooked(layer, returns_grad_input=True)(x)


CASES = [
    Case(
        "full backward hook returning None",
        lambda x, w: _hooked(_TanhProduct(), returns_grad_input=False)(x, w),
        [randn(3, 4), randn(4, 2)],
    ),
    Case(
        "full backward hook returning grad_input, tuple output",
        lambda x, c: _hooked(_TwoOutputs(), returns_grad_input=True)(x, c),
        [randn(3, 2), constant(3, 2)],
    ),
    Case("full backward hook on nn.Linear", _linear, [randn(4, 3)]),
]
