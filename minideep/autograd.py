"""Reverse-mode automatic differentiation: ``Function``, the graph walk, ``no_grad``.

Every operation in minideep is a :class:`Function`. Its ``forward`` works on raw
arrays (numpy or cupy) and keeps in ``ctx`` what ``backward`` will need; its
``backward`` receives the gradient of the loss with respect to each output and
returns the gradient with respect to each input. ``Function.apply`` runs
``forward`` on the arrays inside the input tensors and, when gradients are being
recorded, links the output tensors to the ``ctx`` node that made them. That chain of
nodes *is* the computational graph.

:func:`backward` walks the graph from the output to the leaves. It counts how many
consumers every node has and runs a node only once all of them have passed their
gradients down (Kahn's topological order), so a tensor used twice (``x * x``, a
diamond, an unrolled RNN) receives the sum of both contributions before its own
backward runs. The walk is a loop with an explicit stack, never recursion, so a graph
of any depth works.

Broadcasting is undone here, in one place (:func:`unbroadcast`): an op's backward may
return a gradient of the broadcast shape and the walk sums it down to the input's
shape. Gradient arrays are treated as immutable: the engine and the optimisers never
modify one in place, so two tensors may safely share one gradient array.
"""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = [
    "Function",
    "backward",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "unbroadcast",
    "BUILTIN_FUNCTIONS",
]


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """Whether operations are currently recorded for backward."""
    return _GradMode.enabled


class _SetGradMode(contextlib.ContextDecorator):
    mode = True

    def __init__(self):
        self._previous = []

    def __enter__(self):
        self._previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _GradMode.enabled = self._previous.pop()
        return False


class no_grad(_SetGradMode):
    """Context manager and decorator: operations inside record no graph.

    >>> with md.no_grad():
    ...     y = model(x)          # y.requires_grad is False, nothing is kept for backward
    """

    mode = False


class enable_grad(_SetGradMode):
    """Context manager and decorator that turns recording back on inside ``no_grad``."""

    mode = True


# Every Function subclass defined inside minideep registers itself here, so that the
# gradient-check suite can prove that each built-in op has a check.
BUILTIN_FUNCTIONS: list[type] = []


class Function:
    """An operation with a forward and a backward on raw arrays.

    Subclass it and write two static methods::

        class Square(md.autograd.Function):
            @staticmethod
            def forward(ctx, x):            # x: a numpy or cupy array
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, grad):        # grad: dLoss/dOutput, same shape as the output
                (x,) = ctx.saved_tensors
                return 2 * x * grad         # dLoss/dx

        y = Square.apply(t)                 # t: a Tensor; y: a Tensor linked to the graph

    ``forward`` gets the arrays of the tensor arguments (other arguments pass through
    unchanged) and returns one array or a tuple of arrays. ``backward`` gets one gradient
    per output and returns one gradient (or ``None``) per ``forward`` argument.
    ``ctx.needs_input_grad[i]`` says whether argument ``i`` wants a gradient, so work
    for the others can be skipped.

    The instance of the subclass created by ``apply`` is the ``ctx`` and also the node of
    the graph: it remembers its input tensors in ``ctx.inputs``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("minideep."):
            BUILTIN_FUNCTIONS.append(cls)

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = cls()
        arrays = []
        needs_grad = []
        on_cpu = None
        for a in args:
            if isinstance(a, Tensor):
                data = a.data
                cpu = isinstance(data, np.ndarray)
                if on_cpu is None:
                    on_cpu = cpu
                elif cpu is not on_cpu:
                    _raise_device_mismatch(cls, args)
                arrays.append(data)
                needs_grad.append(a.requires_grad)
            else:
                arrays.append(a)
                needs_grad.append(False)
        requires_grad = _GradMode.enabled and True in needs_grad
        if requires_grad:
            ctx.inputs = args
            ctx.needs_input_grad = needs_grad

        out = cls.forward(ctx, *arrays, **kwargs)

        if type(out) is not tuple:
            ctx.n_outputs = 1
            return _wrap(out, ctx if requires_grad else None, 0)
        ctx.n_outputs = len(out)
        outputs = tuple(_wrap(o, ctx if requires_grad else None, i) for i, o in enumerate(out))
        ctx.output_meta = [(o.shape, o.dtype) for o in outputs]
        return outputs


def _wrap(array, ctx, index: int) -> Tensor:
    """A new Tensor around an op's output, linked to ``ctx`` when it is differentiable.

    (Built without ``Tensor.__init__``'s conversions: this runs once per op.)
    """
    if isinstance(array, np.generic):  # numpy reductions return scalars, not 0-d arrays
        array = np.asarray(array)
    t = Tensor.__new__(Tensor)
    t.data = array
    t.grad = None
    t._retain_grad = False
    if ctx is not None and array.dtype.kind == "f":
        t.requires_grad = True
        t._ctx = ctx
        t._out_index = index
    else:
        t.requires_grad = False
        t._ctx = None
    return t


def _raise_device_mismatch(cls, args):
    devices = [f"{a.device} {tuple(a.shape)}" for a in args if isinstance(a, Tensor)]
    raise RuntimeError(
        f"{cls.__name__}: expected all tensors on the same device, got "
        + ", ".join(devices)
        + ". Move them with .to(device) first."
    )


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting expanded, back to ``shape``.

    ``(a + b)`` with ``a: (4, 3)`` and ``b: (3,)`` broadcasts ``b`` to ``(4, 3)``;
    every copy of ``b`` received a gradient, so ``b``'s gradient is their sum over axis 0.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def backward(tensors, grad_tensors=None) -> None:
    """Accumulate into ``.grad`` of every leaf the gradient of ``tensors``.

    ``tensors`` is a Tensor or a sequence of them; ``grad_tensors`` gives the upstream
    gradient of each (arrays or Tensors; ``None`` means 1 for a one-element tensor).
    """
    if isinstance(tensors, Tensor):
        tensors = [tensors]
        grad_tensors = [grad_tensors]
    elif grad_tensors is None:
        grad_tensors = [None] * len(tensors)

    grads: dict[Function, list] = {}  # node -> gradient of each of its outputs
    roots = []
    for t, g in zip(tensors, grad_tensors):
        if not t.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran under no_grad)"
            )
        g = _initial_gradient(t, g)
        if t._ctx is None:  # backward on a leaf itself
            _accumulate_leaf(t, g)
            continue
        node = t._ctx
        slots = grads.setdefault(node, [None] * node.n_outputs)
        slots[t._out_index] = g if slots[t._out_index] is None else slots[t._out_index] + g
        roots.append(node)

    # Count, for every node reachable from the roots, how many times it is consumed.
    roots = list(dict.fromkeys(roots))
    consumers: dict[Function, int] = {}
    stack = roots[:]
    while stack:
        node = stack.pop()
        for t, needed in zip(node.inputs, node.needs_input_grad):
            if needed and t._ctx is not None:
                parent = t._ctx
                if parent in consumers:
                    consumers[parent] += 1
                else:
                    consumers[parent] = 1
                    stack.append(parent)

    # Run each node once all its consumers have passed their gradient down.
    ready = [node for node in roots if node not in consumers]
    while ready:
        node = ready.pop()
        out_grads = grads.pop(node)
        if node.n_outputs == 1:
            in_grads = node.backward(node, out_grads[0])
        else:
            in_grads = node.backward(node, *_fill_missing(out_grads, node))
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        for t, needed, g in zip(node.inputs, node.needs_input_grad, in_grads):
            if not needed:
                continue
            if g is not None:
                data = t.data
                if g.shape != data.shape:
                    g = unbroadcast(g, data.shape)
                if g.dtype is not data.dtype and g.dtype != data.dtype:
                    g = g.astype(data.dtype)
            parent = t._ctx
            if parent is None:
                if g is not None:
                    _accumulate_leaf(t, g)
                continue
            if g is not None:
                if t._retain_grad:
                    _accumulate_leaf(t, g)
                slots = grads.get(parent)
                if slots is None:
                    slots = grads[parent] = [None] * parent.n_outputs
                k = t._out_index
                slots[k] = g if slots[k] is None else slots[k] + g
            remaining = consumers[parent] - 1
            consumers[parent] = remaining
            if remaining == 0:
                if parent in grads:
                    ready.append(parent)
                else:  # no gradient reached it: nothing flows further up this branch
                    _release_branch(parent, consumers, grads, ready)


def _initial_gradient(t: Tensor, g):
    if g is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a one-element tensor, got shape "
                f"{tuple(t.shape)}; pass gradient= of that shape"
            )
        ones = t.xp.empty(t.data.shape, dtype=t.data.dtype)
        ones.fill(1)  # empty + fill: a fraction of np.ones' Python-level cost
        return ones
    if isinstance(g, Tensor):
        g = g.data
    if tuple(g.shape) != tuple(t.shape):
        raise RuntimeError(
            f"backward(): gradient has shape {tuple(g.shape)} but the tensor has shape "
            f"{tuple(t.shape)}"
        )
    return g.astype(t.data.dtype, copy=False)


def _accumulate_leaf(t: Tensor, g) -> None:
    if t.grad is None:
        grad = Tensor.__new__(Tensor)  # as in _wrap, without its checks: g is an array
        grad.data, grad.grad, grad.requires_grad, grad._ctx, grad._retain_grad = (
            g,
            None,
            False,
            None,
            False,
        )
        t.grad = grad
    else:
        t.grad = _wrap(t.grad.data + g, None, 0)


def _release_branch(node, consumers, grads, ready) -> None:
    """``node`` received no gradient at all: count it as done for each of its inputs."""
    stack = [node]
    while stack:
        done = stack.pop()
        for t, needed in zip(done.inputs, done.needs_input_grad):
            parent = t._ctx if needed else None
            if parent is None:
                continue
            consumers[parent] -= 1
            if consumers[parent] == 0:
                (ready if parent in grads else stack).append(parent)


def _fill_missing(out_grads, node) -> list:
    """Zeros for the outputs of a multi-output node that received no gradient."""
    first = next(a for a in node.inputs if isinstance(a, Tensor))
    return [
        g if g is not None else first.xp.zeros(shape, dtype=dtype)
        for g, (shape, dtype) in zip(out_grads, node.output_meta)
    ]


# Tensor is imported last: tensor.py imports the ops, which import Function from here,
# so either module can be imported first.
from .tensor import Tensor  # noqa: E402
