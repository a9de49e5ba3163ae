"""Reverse-mode automatic differentiation: ``Function``, the graph walk, ``no_grad``.

Every operation in minideep is a :class:`Function`. Its ``forward`` works on raw
arrays (numpy or cupy) and keeps in ``ctx`` what ``backward`` will need; its
``backward`` receives the gradient of the loss with respect to each output and
returns the gradient with respect to each input. ``Function.apply`` runs
``forward`` on the arrays inside the input tensors and, when gradients are being
recorded, links the output tensors to the ``ctx`` node that made them. That chain of
nodes *is* the computational graph.

:func:`backward` walks the graph from the output to the leaves, and must run a node
only once all the nodes consuming its outputs have passed their gradients down, so that
a tensor used twice (``x * x``, a diamond, an unrolled RNN) receives the sum of both
contributions before its own backward runs. Any topological order will do. The walk
uses the one the forward pass already made: every node gets a number as it is created
(``ctx.seq``), and a consumer is always created after what it consumes. So the walk
keeps the nodes that have received a gradient on a heap and always runs the one created
last (PyTorch's engine orders its ready nodes by the same kind of sequence number).
That takes one pass, with no counting of consumers beforehand (Kahn's algorithm, which
lesson 01 writes out, needs two), and a loop rather than recursion, so a graph of any
depth works.

Broadcasting is undone here, in one place (:func:`unbroadcast`): an op's backward may
return a gradient of the broadcast shape and the walk sums it down to the input's
shape. Gradient arrays are treated as immutable: the engine and the optimisers never
modify one in place, so two tensors may safely share one gradient array.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools

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


# Nodes are numbered as they are created (see backward).
_next_seq = itertools.count().__next__

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
    for the others can be skipped (all False when no graph is recorded: under
    ``no_grad``, or when no input requires grad).

    ``ctx`` keeps what backward needs in two ways only: arrays through
    ``ctx.save_for_backward(*arrays)`` (read back as ``ctx.saved_tensors``), anything
    else (shapes, axes, flags) as a plain attribute.

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
            ctx.seq = _next_seq()  # creation order: backward's schedule
        else:  # nothing is recorded: no input will want a gradient from this node
            ctx.needs_input_grad = [False] * len(args)

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
    pending = []  # heap of (-seq, node): the latest-created node that has a gradient first
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
        _add_gradient(grads, pending, t, g)

    # Every consumer of a node was created after it, so running the pending node with the
    # largest creation number runs it after all of its consumers: its gradient is complete.
    while pending:
        node = heapq.heappop(pending)[1]
        out_grads = grads.pop(node)
        if node.n_outputs == 1:
            in_grads = node.backward(node, out_grads[0])
        else:
            in_grads = node.backward(node, *_fill_missing(out_grads, node))
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        for t, needed, g in zip(node.inputs, node.needs_input_grad, in_grads):
            if not needed or g is None:  # no gradient flows up this branch
                continue
            data = t.data
            if g.shape != data.shape:
                g = unbroadcast(g, data.shape)
            if g.dtype is not data.dtype and g.dtype != data.dtype:
                g = g.astype(data.dtype)
            if t._ctx is None:
                _accumulate_leaf(t, g)
                continue
            if t._retain_grad:
                _accumulate_leaf(t, g)
            _add_gradient(grads, pending, t, g)


def _add_gradient(grads, pending, t: Tensor, g) -> None:
    """Add ``g`` to the gradient waiting for output ``t`` of its node; the first gradient
    a node receives puts it on the ``pending`` heap."""
    node = t._ctx
    slots = grads.get(node)
    if slots is None:
        slots = grads[node] = [None] * node.n_outputs
        heapq.heappush(pending, (-node.seq, node))
    k = t._out_index
    slots[k] = g if slots[k] is None else slots[k] + g


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
        if not g.flags.c_contiguous:  # e.g. a broadcast view from sum's backward: own it
            g = g.copy()
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
