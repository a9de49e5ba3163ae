"""Finite-difference gradient checking.

``gradcheck(fn, inputs)`` compares the gradients that backward computes with central
finite differences,

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),

where ``L = sum(fn(inputs) * u)`` for a *random* upstream gradient ``u``. A random ``u``
matters: with ``u = 1`` a backward that forgets to multiply by its incoming gradient
would still pass. Finite differences lose about half of the significant digits, so the
check insists on float64.
"""

from __future__ import annotations

import numpy as np

from .autograd import backward, enable_grad, grad, no_grad
from .backend import as_numpy
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytical gradient disagrees with the finite-difference one."""


def gradcheck(
    fn,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check the gradient of ``fn`` with respect to every input that requires grad.

    fn: maps the input tensors (as separate arguments) to a Tensor or a tuple of Tensors.
    inputs: a Tensor or a tuple of Tensors; those with ``requires_grad`` are checked and
    must be float64.
    Returns True, or raises :class:`GradcheckError` naming the input, the element index of
    the worst mismatch, both values and the error (returns False when
    ``raise_exception=False``).
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    failure = first_failure(compare_gradients(fn, inputs, eps, seed), inputs, atol, rtol)
    if failure is None:
        return True
    if raise_exception:
        raise GradcheckError(failure)
    return False


def gradgradcheck(
    fn,
    inputs,
    grad_outputs=None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check second derivatives: :func:`gradcheck` of the first gradient.

    As ``torch.autograd.gradgradcheck``: with upstream gradients ``u`` (random float64
    unless ``grad_outputs`` is given), the function ``(inputs, u) -> d(sum fn(inputs) *
    u)/d inputs`` is computed with ``create_graph=True`` and its own gradient, with
    respect to the inputs and to ``u``, is compared with finite differences.
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    failure = first_failure(*_second_order_pairs(fn, inputs, grad_outputs, eps, seed), atol, rtol)
    if failure is None:
        return True
    if raise_exception:
        raise GradcheckError(failure)
    return False


def _second_order_pairs(fn, inputs, grad_outputs, eps, seed):
    """``(pairs, inputs)`` for the gradcheck of the first gradient of ``fn``."""
    n = len(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        outs = [o for o in as_tuple(fn(*inputs)) if o.requires_grad]
        grad_outputs = [
            Tensor(o.xp.asarray(rng.standard_normal(o.shape)), requires_grad=True) for o in outs
        ]
    grad_outputs = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)

    def first_gradient(*args):
        xs, us = args[:n], args[n:]
        outs = [o for o in as_tuple(fn(*xs)) if o.requires_grad]
        grads = grad(
            outs,
            [xs[i] for i in checked],
            us,
            create_graph=True,
            materialize_grads=True,
            allow_unused=True,
        )
        return tuple(grads)

    everything = (*inputs, *grad_outputs)
    return compare_gradients(first_gradient, everything, eps, seed, record=True), everything


def first_failure(pairs, inputs, atol: float, rtol: float) -> str | None:
    """The message for the first input whose gradients differ beyond tolerance, or None.

    An element fails when |analytical - numerical| > atol + rtol * |numerical|; the message
    names the element where that excess is largest.
    """
    for i, analytic, numeric in pairs:
        error = np.abs(analytic - numeric)
        excess = error - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
            return (
                f"gradcheck failed for input {i} (shape {tuple(inputs[i].shape)}) at index "
                f"{tuple(int(k) for k in worst)}: analytical {analytic[worst]:.8g}, numerical "
                f"{numeric[worst]:.8g}, error {error[worst]:.3g} (atol {atol:g}, rtol {rtol:g})"
            )
    return None


def compare_gradients(fn, inputs, eps: float = 1e-6, seed: int = 0, record: bool = False):
    """``[(input index, analytical gradient, numerical gradient)]`` for each checked input.

    Both gradients are of ``L = sum(fn(*inputs) * u)`` with a random upstream ``u``.
    The inputs' existing ``.grad`` values are left as they were.
    """
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64 "
                f"inputs (use .double() or dtype=md.float64)"
            )

    rng = np.random.default_rng(seed)
    all_outputs = as_tuple(fn(*inputs))
    used = [k for k, o in enumerate(all_outputs) if o.requires_grad]
    outputs = [all_outputs[k] for k in used]
    upstream = [o.xp.asarray(rng.standard_normal(o.shape)) for o in outputs]

    def objective() -> float:
        # (A function that itself differentiates, as gradgradcheck's does, needs its graph.)
        with no_grad() if not record else enable_grad():
            outs = as_tuple(fn(*inputs))
        return float(sum(float((outs[k].data * u).sum()) for k, u in zip(used, upstream)))

    saved_grads = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    try:
        if outputs:
            backward(outputs, upstream)
        analytical = [
            as_numpy(inputs[i].grad.data)
            if inputs[i].grad is not None
            else np.zeros(inputs[i].shape)
            for i in checked
        ]
    finally:
        for i, g in zip(checked, saved_grads):
            inputs[i].grad = g
    return [
        (i, analytic, _numerical_gradient(objective, inputs[i], eps))
        for i, analytic in zip(checked, analytical)
    ]


def as_tuple(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def _numerical_gradient(objective, x: Tensor, eps: float) -> np.ndarray:
    if not x.data.flags.c_contiguous:
        x.data = x.data.copy()
    flat = x.data.reshape(-1)  # a view: perturbing it perturbs x
    grad = np.zeros(flat.shape[0])
    for k in range(flat.shape[0]):
        original = float(flat[k])
        flat[k] = original + eps
        plus = objective()
        flat[k] = original - eps
        minus = objective()
        flat[k] = original
        grad[k] = (plus - minus) / (2 * eps)
    return grad.reshape(x.shape)
