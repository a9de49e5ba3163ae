"""Gradient-check cases for every built-in differentiable op.

Each ops family has a file here with a list ``CASES``. A :class:`Case` names a small
function of tensors and the inputs to feed it; :func:`run_case` builds float64 inputs
and runs :func:`minideep.gradcheck` on it. The test suite and ``minideep gradcheck``
run them all, and :func:`functions_used` tells which ``Function`` classes a case's graph
contains, so a built-in op that no case exercises is reported as unchecked.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..gradcheck import GradcheckError, as_tuple, compare_gradients, first_failure
from ..tensor import Tensor


@dataclass(frozen=True)
class Spec:
    """How to draw one input: a shape and a distribution, and whether it is checked."""

    shape: tuple
    kind: str = "normal"  # "normal", "uniform", "positive", "int" or "bool"
    low: float = 0.0
    high: float = 1.0
    grad: bool = True

    def make(self, rng: np.random.Generator, device: str = "cpu") -> Tensor:
        if self.kind == "normal":
            data = rng.standard_normal(self.shape)
        elif self.kind == "uniform":
            data = rng.uniform(self.low, self.high, self.shape)
        elif self.kind == "positive":
            data = rng.uniform(0.5, 2.0, self.shape)
        elif self.kind == "int":
            data = rng.integers(int(self.low), int(self.high), self.shape).astype(np.int64)
        elif self.kind == "bool":
            data = rng.random(self.shape) < 0.5
        else:
            raise ValueError(f"unknown spec kind {self.kind!r}")
        t = Tensor(np.asarray(data, dtype=np.float64) if data.dtype.kind == "f" else data)
        if device != "cpu":
            t = t.to(device)
        if data.dtype.kind == "f" and self.grad:
            t.requires_grad = True
        return t


def randn(*shape) -> Spec:
    """Standard-normal float64 input, checked."""
    return Spec(tuple(shape))


def positive(*shape) -> Spec:
    """Input in [0.5, 2): for log, sqrt, division."""
    return Spec(tuple(shape), "positive")


def uniform(low: float, high: float, *shape) -> Spec:
    return Spec(tuple(shape), "uniform", low, high)


def integers(high: int, *shape) -> Spec:
    """int64 input in [0, high): class indices, not checked."""
    return Spec(tuple(shape), "int", 0, high, grad=False)


def constant(*shape) -> Spec:
    """Standard-normal float64 input that is not checked (a target, say)."""
    return Spec(tuple(shape), grad=False)


def mask(*shape) -> Spec:
    return Spec(tuple(shape), "bool", grad=False)


@dataclass
class Case:
    """A named gradient check: ``fn(*inputs)`` with inputs drawn from ``specs``."""

    name: str
    fn: Callable
    specs: list = field(default_factory=list)
    atol: float = 1e-5
    rtol: float = 1e-3
    eps: float = 1e-6

    def inputs(self, seed: int = 0, device: str = "cpu") -> list[Tensor]:
        rng = np.random.default_rng(seed)
        return [s.make(rng, device) for s in self.specs]


def run_case(case: Case, seed: int = 0, device: str = "cpu") -> float:
    """Gradcheck one case (raising GradcheckError on a mismatch); returns the largest
    absolute difference between analytical and numerical gradients."""
    inputs = case.inputs(seed, device)
    pairs = compare_gradients(case.fn, inputs, eps=case.eps, seed=seed)
    failure = first_failure(pairs, inputs, case.atol, case.rtol)
    if failure is not None:
        raise GradcheckError(f"{case.name}: {failure}")
    return max(float(np.abs(a - n).max(initial=0.0)) for _, a, n in pairs)


def run_second_order(case: Case, seed: int = 0, device: str = "cpu") -> None:
    """gradgradcheck one case (raising GradcheckError on a mismatch)."""
    from ..gradcheck import _second_order_pairs

    inputs = case.inputs(seed, device)
    pairs, everything = _second_order_pairs(case.fn, inputs, None, case.eps, seed)
    failure = first_failure(pairs, everything, case.atol, case.rtol)
    if failure is not None:
        raise GradcheckError(f"{case.name} (second order): {failure}")


def all_cases() -> list[Case]:
    """Every case of every family module in this package."""
    cases = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases.extend(getattr(module, "CASES", []))
    return cases


def functions_used(case: Case) -> set[type]:
    """The Function classes in the graph that ``case`` builds."""
    out = as_tuple(case.fn(*case.inputs()))
    seen, stack, found = set(), [o._ctx for o in out if o._ctx is not None], set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        found.add(type(node))
        stack.extend(t._ctx for t in node.inputs if isinstance(t, Tensor) and t._ctx is not None)
    return found
