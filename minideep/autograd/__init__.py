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

**Gradients of gradients.** A built-in op's ``backward`` is written once, with
operators and the functions of ``xp = get_array_module(grad)``. On raw arrays ``xp`` is
numpy (or cupy) and the backward is plain array code. With ``create_graph=True`` the walk
hands ``backward`` Tensors instead: ``grad`` and ``ctx.saved_tensors`` are Tensors (a
saved input or output is the very Tensor of the graph), ``xp`` is
:mod:`minideep.ops.xp` (the same names on Tensors), and so the same formula records a
new graph, the graph of the gradient, which can be differentiated again. This is the
scheme of HIPS autograd and of PyTorch (whose derivative formulas are written in
differentiable ops). A user's ``Function`` gets raw arrays unless it says
``differentiable_backward = True``; without it, it is differentiable once, and
differentiating its gradient raises an error that names it.

Broadcasting is undone here, in one place (:func:`unbroadcast`): an op's backward may
return a gradient of the broadcast shape and the walk sums it down to the input's
shape. Gradient arrays are treated as immutable: the engine and the optimisers never
modify one in place, so two tensors may safely share one gradient array.

Hooks: ``Tensor.register_hook(fn)`` keeps ``fn`` on a leaf tensor, or for a non-leaf on
its node (``node.output_hooks``, per output); the walk calls them with the tensor's
complete gradient, before it flows on, and uses what they return instead.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools

import numpy as np

__all__ = [
    "Function",
    "backward",
    "grad",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_grad_enabled",
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


class set_grad_enabled(_SetGradMode):
    """``set_grad_enabled(False)`` is ``no_grad()``, ``set_grad_enabled(True)`` is
    ``enable_grad()``; like PyTorch's, it also takes effect when called as a function."""

    def __init__(self, mode: bool):
        super().__init__()
        self.mode = bool(mode)
        self._before = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __enter__(self):
        self._previous.append(self._before)
        return self


# Nodes are numbered as they are created (see backward).
_next_seq = itertools.count().__next__

# Every Function subclass defined inside minideep registers itself here, so that the
# gradient-check suites can prove that each built-in op has a first- and second-order check.
BUILTIN_FUNCTIONS: list[type] = []


class _Freed:
    """What ``ctx.saved_tensors`` becomes once backward has used it (``retain_graph=False``)."""

    def _fail(self, *args):
        raise RuntimeError(
            "Trying to backward through the graph a second time (or to use saved tensors "
            "after they were freed). Saved arrays are freed when backward has used them; "
            "pass retain_graph=True to the first backward() or autograd.grad() to keep them."
        )

    __iter__ = __getitem__ = __len__ = _fail

    def __bool__(self):
        return True


_FREED = _Freed()


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

    **Twice differentiable.** Set ``differentiable_backward = True`` on the class and
    write ``backward`` with operators and ``xp = md.get_array_module(grad)`` only (no
    in-place writes, no ``.data``): then with ``create_graph=True`` it runs on Tensors
    and its gradient can be differentiated again (``Square`` above qualifies as it
    stands). Only what backward reads from ``ctx.saved_tensors`` that is an input or the
    output comes back as a Tensor of the graph; any other saved float array (an
    intermediate of forward) comes back as a *constant*, so recompute such values from
    the inputs in backward, or the second derivative is silently wrong (``gradgradcheck``
    catches it). Left False, backward always gets arrays, and differentiating through the
    gradient it returned raises an error naming the class. Built-in ops are all
    ``differentiable_backward``; in a graph-building backward ``ctx.create_graph`` is
    True, and ``ctx.inputs`` holds the input Tensors.

    The instance of the subclass created by ``apply`` is the ``ctx`` and also the node of
    the graph: it remembers its input tensors in ``ctx.inputs``.
    """

    differentiable_backward = False
    create_graph = False  # True while backward runs on Tensors (create_graph=True)
    saved_tensors = ()
    output_hooks = None  # {output index: [hook, ...]}, from Tensor.register_hook

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("minideep.") and not cls.__dict__.get("_internal"):
            BUILTIN_FUNCTIONS.append(cls)
            if "differentiable_backward" not in cls.__dict__:
                cls.differentiable_backward = True

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
            if requires_grad and isinstance(out, np.generic):
                out = _own_scalar(ctx, out)
            return _wrap(out, ctx if requires_grad else None, 0)
        ctx.n_outputs = len(out)
        outputs = tuple(_wrap(o, ctx if requires_grad else None, i) for i, o in enumerate(out))
        ctx.output_meta = [(o.shape, o.dtype) for o in outputs]
        return outputs

    @classmethod
    def run(cls, *args, **kwargs):
        """``apply`` when an argument is a Tensor (a node is recorded), else ``forward``
        on the raw arrays. A backward that is itself an op (GetItem's is a scatter into
        zeros, a convolution's is a transposed one) calls it this way, so it computes on
        arrays and builds a graph on Tensors."""
        for a in args:
            if isinstance(a, Tensor):
                return cls.apply(*args, **kwargs)
        return cls.forward(cls(), *args, **kwargs)


def _own_scalar(ctx, scalar):
    """NumPy returns a 0-d result as a scalar; the output Tensor needs an array. If the op
    saved that scalar (its output), save the array instead, so that a graph-building
    backward recognises it as the output (by identity) rather than as a constant."""
    array = np.asarray(scalar)
    saved = ctx.saved_tensors
    if saved:
        ctx.saved_tensors = tuple(array if s is scalar else s for s in saved)
    return array


def _wrap(array, ctx, index: int) -> Tensor:
    """A new Tensor around an op's output, linked to ``ctx`` when it is differentiable.

    (Built without ``Tensor.__init__``'s conversions: this runs once per op.)
    """
    if isinstance(array, np.generic):  # numpy reductions return scalars, not 0-d arrays
        array = np.asarray(array)
    t = Tensor.__new__(Tensor)
    t.data = array
    t.grad = None
    t._hooks = None
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
    (``grad`` may be an array or, when a graph is being built, a Tensor.)
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


# ---------------------------------------------------------------------------- the walk


def backward(
    tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False, inputs=None
) -> None:
    """Accumulate into ``.grad`` of every leaf the gradient of ``tensors``.

    ``tensors`` is a Tensor or a sequence of them; ``grad_tensors`` gives the upstream
    gradient of each (arrays or Tensors; ``None`` means 1 for a one-element tensor).
    ``retain_graph`` (default: ``create_graph``) keeps the saved arrays for another
    backward. ``create_graph=True`` makes the gradients Tensors of a new graph, which can
    be differentiated again. ``inputs``: accumulate into these tensors only.
    """
    tensors, grad_tensors = _roots(tensors, grad_tensors)
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        _run(tensors, grad_tensors, retain_graph, create_graph, inputs, accumulate=True)
        return
    _run(tensors, grad_tensors, retain_graph, create_graph)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph: bool = False,
    allow_unused: bool = False,
    materialize_grads: bool = False,
):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple of Tensors.

    Like ``torch.autograd.grad``: ``.grad`` of the leaves is not touched; only the part of
    the graph between ``outputs`` and ``inputs`` runs. With ``create_graph=True`` the
    results are Tensors of a new graph (differentiate them again). An input that
    ``outputs`` do not depend on is an error unless ``allow_unused=True`` (then its
    gradient is None, or zeros with ``materialize_grads=True``).
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(
                f"autograd.grad: input {i} does not require grad; every input must be a "
                f"Tensor with requires_grad=True"
            )
    outputs, grad_outputs = _roots(outputs, grad_outputs)
    found = _run(outputs, grad_outputs, retain_graph, create_graph, inputs, accumulate=False)
    result = []
    for i, t in enumerate(inputs):
        g = found.get(id(t))
        if g is None:
            if materialize_grads:
                g = t.xp.zeros(t.shape, dtype=t.dtype)
            elif not allow_unused:
                raise RuntimeError(
                    f"autograd.grad: input {i} (shape {tuple(t.shape)}) was not used to "
                    f"compute the outputs; pass allow_unused=True to get None for it"
                )
        if g is not None and not isinstance(g, Tensor):
            g = _wrap(g, None, 0)
        result.append(g)
    return tuple(result)


def _roots(tensors, grads):
    if isinstance(tensors, Tensor):
        return [tensors], [grads[0] if isinstance(grads, (tuple, list)) else grads]
    tensors = list(tensors)
    if grads is None:
        grads = [None] * len(tensors)
    elif isinstance(grads, Tensor):
        grads = [grads]
    return tensors, list(grads)


def _run(roots, root_grads, retain_graph, create_graph, targets=None, accumulate=True):
    """The walk. ``targets``: the tensors whose gradients are wanted (None: every leaf).
    With ``accumulate`` they go into ``.grad``; else they are returned by ``id``."""
    if retain_graph is None:
        retain_graph = create_graph
    graph = bool(create_graph)
    grads: dict[Function, list] = {}  # node -> gradient of each of its outputs
    pending = []  # heap of (-seq, node): the latest-created node that has a gradient first
    found: dict[int, object] = {}  # id(target) -> its gradient (for grad())
    if targets is not None:
        wanted = {id(t): t for t in targets}
        prune = _edges_to(roots, targets)  # node -> which inputs lead to a target
        at_node = {}  # (node, output index) -> non-leaf target
        for t in targets:
            if t._ctx is not None:
                at_node[(t._ctx, t._out_index)] = t
    else:
        wanted = prune = at_node = None

    enabled_before = _GradMode.enabled
    _GradMode.enabled = graph  # a graph-building backward records; a plain one never does
    try:
        for i, (t, g) in enumerate(zip(roots, root_grads)):
            if not t.requires_grad:
                raise RuntimeError(
                    f"element {i} of the tensors given to backward/grad does not require "
                    "grad: no input of the computation had requires_grad=True, or it ran "
                    "under no_grad, or it is a gradient computed without create_graph=True"
                )
            g = _initial_gradient(t, g, graph)
            if t._ctx is None:  # backward on a leaf itself
                if wanted is None:
                    _accumulate_leaf(t, g)
                elif id(t) in wanted:
                    _give(found, t, g, accumulate)
                continue
            _add_gradient(grads, pending, t, g)
            if graph:
                _remember_output(t)

        # Every consumer of a node was created after it, so running the pending node with
        # the largest creation number runs it after all of its consumers: its gradient is
        # complete.
        while pending:
            node = heapq.heappop(pending)[1]
            out_grads = grads.pop(node)
            if node.output_hooks is not None:
                out_grads = _run_output_hooks(node, out_grads)
            needs = node.needs_input_grad
            if prune is not None:
                for k, g in enumerate(out_grads):
                    t = at_node.get((node, k))
                    if t is not None and g is not None:
                        _give(found, t, g, accumulate)
                needs = prune.get(node)
                if needs is None:  # nothing wanted lies beyond this node
                    continue
            if graph or needs is not node.needs_input_grad:
                in_grads = _node_backward(node, out_grads, needs, graph)
            elif node.n_outputs == 1:  # the plain first-order walk, inline
                in_grads = node.backward(node, out_grads[0])
            else:
                in_grads = node.backward(node, *_fill_missing(out_grads, node, False))
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if not retain_graph and node.saved_tensors:
                node.saved_tensors = _FREED
            for t, needed, g in zip(node.inputs, needs, in_grads):
                if not needed or g is None:  # no gradient flows up this branch
                    continue
                data = t.data
                if g.shape != data.shape:
                    g = unbroadcast(g, data.shape)
                if g.dtype is not data.dtype and g.dtype != data.dtype:
                    g = _ops.cast(g, data.dtype) if graph else g.astype(data.dtype)
                if t._ctx is None:
                    if wanted is None:
                        _accumulate_leaf(t, g)
                    elif id(t) in wanted:
                        _give(found, t, g, accumulate)
                    continue
                _add_gradient(grads, pending, t, g)
                if graph:
                    _remember_output(t)
    finally:
        _GradMode.enabled = enabled_before
    return found


def _node_backward(node, out_grads, needs, graph: bool) -> tuple:
    """Run one node's backward: on arrays, or on Tensors to build the gradient's graph."""
    if needs is not node.needs_input_grad:
        original, node.needs_input_grad = node.needs_input_grad, needs
    else:
        original = None
    try:
        if not graph:
            if node.n_outputs == 1:
                in_grads = node.backward(node, out_grads[0])
            else:
                in_grads = node.backward(node, *_fill_missing(out_grads, node, False))
        elif node.differentiable_backward:
            in_grads = _backward_on_tensors(node, out_grads)
        else:
            in_grads = _backward_once(node, out_grads)
    finally:
        if original is not None:
            node.needs_input_grad = original
    return in_grads


def _backward_on_tensors(node, out_grads):
    """``node.backward`` with Tensors: what it saved, if an input or an output of the node,
    is given back as that Tensor of the graph (other saved arrays are constants)."""
    out_grads = [g if g is None or isinstance(g, Tensor) else _wrap(g, None, 0) for g in out_grads]
    arrays = node.saved_tensors
    if arrays is _FREED:
        arrays._fail()
    inputs = node.inputs
    by_id = {}
    for t in (*getattr(node, "_output_tensors", {}).values(), *inputs):
        if isinstance(t, Tensor):
            by_id.setdefault(id(t.data), t)
    saved = []
    for i, a in enumerate(arrays):
        if not hasattr(a, "dtype") or isinstance(a, Tensor) or a.dtype.kind != "f":
            saved.append(a)  # numbers, indices and masks stay as they are: no gradient
        elif i < len(inputs) and isinstance(inputs[i], Tensor) and inputs[i].data is a:
            saved.append(inputs[i])  # saved in argument order: the very input
        else:
            t = by_id.get(id(a))
            saved.append(t if t is not None else _wrap(a, None, 0))
    saved = tuple(saved)
    node.saved_tensors, node.create_graph = saved, True
    try:
        if node.n_outputs == 1:
            return node.backward(node, out_grads[0])
        return node.backward(node, *_fill_missing(out_grads, node, True))
    finally:
        node.saved_tensors, node.create_graph = arrays, False


def _backward_once(node, out_grads):
    """A Function whose backward works on arrays: its gradient is computed on arrays and
    linked to a node that refuses to be differentiated (naming the Function)."""
    arrays = [g.data if isinstance(g, Tensor) else g for g in out_grads]
    if node.n_outputs == 1:
        raw = node.backward(node, arrays[0])
    else:
        raw = node.backward(node, *_fill_missing(arrays, node, False))
    raw = raw if type(raw) is tuple else (raw,)
    sources = [g for g in out_grads if isinstance(g, Tensor)] + [
        t for t in node.inputs if isinstance(t, Tensor)
    ]
    return tuple(
        None if g is None else _OnceDifferentiable.apply(type(node).__name__, g, *sources)
        for g in raw
    )


class _OnceDifferentiable(Function):
    """The gradient computed by a Function with a raw-array backward (see Function)."""

    _internal = True

    @staticmethod
    def forward(ctx, name, g, *sources):
        ctx.name = name
        return g

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(
            f"{ctx.name} is differentiable once only: its backward works on raw arrays. "
            f"To differentiate through its gradient, write its backward with operators and "
            f"xp = md.get_array_module(grad) and set differentiable_backward = True on "
            f"{ctx.name} (see md.autograd.Function)."
        )


def _edges_to(roots, targets) -> dict:
    """For the nodes between ``roots`` and ``targets``: node -> [does input i lead to a
    target]. Nodes from which no target can be reached are left out."""
    target_ids = {id(t) for t in targets}
    order, seen = [], set()
    stack = [(t._ctx, False) for t in roots if t._ctx is not None]
    while stack:  # iterative post-order: a node after all the nodes it consumes
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        for t in node.inputs:
            if isinstance(t, Tensor) and t._ctx is not None and t._ctx not in seen:
                stack.append((t._ctx, False))
    edges = {}
    for node in order:
        mask = [
            bool(needed)
            and isinstance(t, Tensor)
            and (id(t) in target_ids or (t._ctx is not None and t._ctx in edges))
            for t, needed in zip(node.inputs, node.needs_input_grad)
        ]
        if True in mask:
            edges[node] = mask
    return edges


def _give(found, t, g, accumulate: bool) -> None:
    """Hand a target its gradient: into ``.grad`` (backward with inputs=) or ``found``."""
    if t._hooks is not None and t._ctx is None:
        g = _run_hooks(t._hooks, g)
    if accumulate:
        _accumulate_leaf(t, g, hooks=False)
        return
    previous = found.get(id(t))
    found[id(t)] = g if previous is None else previous + g


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


def _remember_output(t: Tensor) -> None:
    """Building a graph: keep the output Tensor on its node, so that a saved output is
    given back to backward as that Tensor (see _backward_on_tensors)."""
    t._ctx.__dict__.setdefault("_output_tensors", {})[t._out_index] = t


def _run_output_hooks(node, out_grads) -> list:
    out_grads = list(out_grads)
    for k, hooks in node.output_hooks.items():
        if out_grads[k] is not None:
            out_grads[k] = _run_hooks(hooks, out_grads[k])
    return out_grads


def _run_hooks(hooks, g):
    """Call each hook with the gradient; one that returns something replaces it. The
    hooks ``retain_grad`` adds run last, so they keep the final gradient (as in PyTorch)."""
    wrap = not isinstance(g, Tensor)
    current = _wrap(g, None, 0) if wrap else g
    for hook in sorted(hooks, key=lambda h: getattr(h, "retains", False)):
        replaced = hook(current)
        if replaced is not None:
            if not isinstance(replaced, Tensor):
                raise TypeError(f"a gradient hook returned {type(replaced).__name__}, not a Tensor")
            if tuple(replaced.shape) != tuple(current.shape):
                raise RuntimeError(
                    f"a gradient hook returned shape {tuple(replaced.shape)} for a gradient "
                    f"of shape {tuple(current.shape)}"
                )
            current = replaced
    return current.data if wrap else current


def _initial_gradient(t: Tensor, g, graph: bool):
    if g is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a one-element tensor, got shape "
                f"{tuple(t.shape)}; pass gradient= of that shape"
            )
        ones = t.xp.empty(t.data.shape, dtype=t.data.dtype)
        ones.fill(1)  # empty + fill: a fraction of np.ones' Python-level cost
        return _wrap(ones, None, 0) if graph else ones
    if isinstance(g, Tensor):
        if tuple(g.shape) != tuple(t.shape):
            _raise_gradient_shape(g, t)
        if graph:
            return g if g.dtype == t.dtype else _ops.cast(g, t.data.dtype)
        g = g.data
    elif tuple(g.shape) != tuple(t.shape):
        _raise_gradient_shape(g, t)
    g = g.astype(t.data.dtype, copy=False)
    return _wrap(g, None, 0) if graph else g


def _raise_gradient_shape(g, t):
    raise RuntimeError(
        f"backward(): gradient has shape {tuple(g.shape)} but the tensor has shape {tuple(t.shape)}"
    )


def _accumulate_leaf(t: Tensor, g, hooks: bool = True) -> None:
    if hooks and t._hooks is not None:
        g = _run_hooks(t._hooks, g)
    if type(g) is Tensor:  # a graph-building backward: .grad is part of the new graph
        t.grad = g if t.grad is None else t.grad + g
        return
    if t.grad is None:
        if not g.flags.c_contiguous:  # e.g. a broadcast view from sum's backward: own it
            g = g.copy()
        grad = Tensor.__new__(Tensor)  # as in _wrap, without its checks: g is an array
        grad.data, grad.grad, grad.requires_grad, grad._ctx, grad._hooks = (
            g,
            None,
            False,
            None,
            None,
        )
        t.grad = grad
    else:
        t.grad = _wrap(t.grad.data + g, None, 0)


def _fill_missing(out_grads, node, graph: bool) -> list:
    """Zeros for the outputs of a multi-output node that received no gradient."""
    first = next(a for a in node.inputs if isinstance(a, Tensor))
    out = []
    for g, (shape, dtype) in zip(out_grads, node.output_meta):
        if g is None:
            g = first.xp.zeros(shape, dtype=dtype)
            if graph:
                g = _wrap(g, None, 0)
        out.append(g)
    return out


# Tensor is imported last: tensor.py imports the ops, which import Function from here,
# so either module can be imported first.
from .. import ops as _ops  # noqa: E402
from ..tensor import Tensor  # noqa: E402
from . import functional  # noqa: E402, F401  (md.autograd.functional)
