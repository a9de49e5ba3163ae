"""Functional transforms of a function of Tensors, as in ``torch.autograd.functional``.

Each is a few calls of :func:`minideep.autograd.grad`:

* ``vjp(f, x, v)`` - vector-Jacobian product ``v^T J``: one backward of f.
* ``jvp(f, x, v)`` - Jacobian-vector product ``J v``, reverse mode twice (the "double
  vjp" trick): ``g(u) = u^T J`` is linear in a dummy ``u``, so ``d(g . v)/du = J v``.
* ``jacobian(f, x)`` - every row of J, one backward per output element.
* ``hessian(f, x)`` - the Jacobian of the gradient (f returns one number).
* ``vhp(f, x, v)`` / ``hvp(f, x, v)`` - ``v^T H`` and ``H v`` without forming H: the
  gradient with ``create_graph=True``, then the gradient of ``grad . v``. For a
  twice continuously differentiable f the Hessian is symmetric, so the two agree.

``inputs`` is a Tensor or a tuple of Tensors, and results mirror that structure (and
f's output structure), as in PyTorch. Inputs are taken as new leaves (detached), so
``.grad`` of the caller's tensors is never touched; with ``create_graph=True`` the
results stay linked to the caller's graph.
"""

from __future__ import annotations

from . import enable_grad, grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(x):
    """``(tuple of x, whether x was a tuple)``."""
    return ((x,), False) if not isinstance(x, (tuple, list)) else (tuple(x), True)


def _leaves(inputs, create_graph: bool):
    """The inputs as tensors to differentiate at: new leaves, or (create_graph, input
    already in a graph) views that keep the link to it."""
    out = []
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"input {i} is a {type(t).__name__}, expected a Tensor")
        if t.dtype.kind != "f":
            raise TypeError(f"input {i} has dtype {t.dtype}; differentiation needs floats")
        if create_graph and t.requires_grad:
            out.append(t.reshape(t.shape))  # a new node of the caller's graph
        else:
            out.append(Tensor(t.data, requires_grad=True))
    return tuple(out)


def _zeros_for_none(grads, like):
    return tuple(
        g if g is not None else Tensor(x.xp.zeros(x.shape, dtype=x.dtype))
        for g, x in zip(grads, like)
    )


def _check_v(v, like, what: str):
    v = _as_tuple(v)[0]
    if len(v) != len(like):
        raise RuntimeError(f"{what}: v has {len(v)} tensors, expected {len(like)}")
    for k, (a, b) in enumerate(zip(v, like)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(
                f"{what}: v[{k}] has shape {tuple(a.shape)}, expected {tuple(b.shape)}"
            )
    return v


def _detach(ts, create_graph: bool):
    return ts if create_graph else tuple(t.detach() for t in ts)


def _default_v(outputs, what: str):
    for o in outputs:
        if o.numel() != 1:
            raise RuntimeError(
                f"{what}: v can be omitted only when the function returns one-element "
                f"tensors, got shape {tuple(o.shape)}"
            )
    return tuple(Tensor(o.xp.ones(o.shape, dtype=o.dtype)) for o in outputs)


def _mirror(values, is_tuple: bool):
    return tuple(values) if is_tuple else values[0]


def _call(func, xs):
    with enable_grad():
        out = func(*xs)
    outs, is_tuple = _as_tuple(out)
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"the function returned a {type(o).__name__} as output {k}")
    return outs, is_tuple


def _grad(outputs, xs, v, create_graph):
    pairs = [(o, g) for o, g in zip(outputs, v) if o.requires_grad]
    if not pairs:
        return (None,) * len(xs)
    return grad(
        [o for o, _ in pairs],
        xs,
        [g for _, g in pairs],
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T J)``."""
    inputs, in_tuple = _as_tuple(inputs)
    xs = _leaves(inputs, create_graph)
    outs, out_tuple = _call(func, xs)
    v = _default_v(outs, "vjp") if v is None else _check_v(v, outs, "vjp")
    grads = _strict(_grad(outs, xs, v, create_graph), strict, "vjp")
    return (
        _mirror(_detach(outs, create_graph), out_tuple),
        _mirror(_zeros_for_none(grads, xs), in_tuple),
    )


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), J v)``, by reverse mode twice (see the module docstring)."""
    inputs, in_tuple = _as_tuple(inputs)
    xs = _leaves(inputs, create_graph)
    outs, out_tuple = _call(func, xs)
    if v is None:
        v = _default_v(xs, "jvp")
    else:
        v = _check_v(v, xs, "jvp")
    us = tuple(Tensor(o.xp.zeros(o.shape, dtype=o.dtype), requires_grad=True) for o in outs)
    g = _grad(outs, xs, us, create_graph=True)
    pairs = [(gi, vi) for gi, vi in zip(g, v) if gi is not None and gi.requires_grad]
    if pairs:
        found = grad(
            [p for p, _ in pairs],
            us,
            [q for _, q in pairs],
            create_graph=create_graph,
            allow_unused=True,
        )
    else:
        found = (None,) * len(us)
    found = _strict(found, strict, "jvp")
    return (
        _mirror(_detach(outs, create_graph), out_tuple),
        _mirror(_zeros_for_none(found, outs), out_tuple),
    )


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False):
    """d func(inputs) / d inputs, of shape ``output.shape + input.shape`` for each pair.

    One Tensor for one input and one output; a tuple over inputs for a tuple of
    inputs; a tuple over outputs (of those) for a tuple of outputs.
    """
    inputs, in_tuple = _as_tuple(inputs)
    xs = _leaves(inputs, create_graph)
    outs, out_tuple = _call(func, xs)
    per_output = []
    for o in outs:
        rows = [[] for _ in xs]
        flat = o.reshape(-1)
        for k in range(o.numel()):
            if o.requires_grad:
                found = grad(
                    flat[k], xs, retain_graph=True, create_graph=create_graph, allow_unused=True
                )
            else:
                found = (None,) * len(xs)
            found = _strict(found, strict, "jacobian")
            for j, g in enumerate(_zeros_for_none(found, xs)):
                rows[j].append(g)
        blocks = []
        for j, x in enumerate(xs):
            if rows[j]:
                block = stack(rows[j], 0).reshape(tuple(o.shape) + tuple(x.shape))
            else:
                block = Tensor(x.xp.zeros(tuple(o.shape) + tuple(x.shape), dtype=x.dtype))
            blocks.append(block if create_graph else block.detach())
        per_output.append(_mirror(blocks, in_tuple))
    return _mirror(per_output, out_tuple)


def hessian(func, inputs, create_graph: bool = False, strict: bool = False):
    """The matrix of second derivatives of a function returning one number:
    ``input.shape + input.shape`` (a tuple of tuples for a tuple of inputs)."""
    inputs, in_tuple = _as_tuple(inputs)

    def gradient(*xs):
        outs, _ = _call(func, xs)
        _check_scalar(outs, "hessian")
        found = grad(outs[0], xs, create_graph=True, allow_unused=True)
        return _mirror(_zeros_for_none(_strict(found, strict, "hessian"), xs), in_tuple)

    return jacobian(gradient, _mirror(inputs, in_tuple), create_graph, strict)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T H)`` for a function returning one number."""
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), H v)`` for a function returning one number (H is symmetric, so
    this is ``v^T H`` computed the same way)."""
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def _hessian_product(func, inputs, v, create_graph, strict, what):
    inputs, in_tuple = _as_tuple(inputs)
    xs = _leaves(inputs, create_graph)
    outs, _ = _call(func, xs)
    _check_scalar(outs, what)
    v = _default_v(xs, what) if v is None else _check_v(v, xs, what)
    g = grad(outs[0], xs, create_graph=True, allow_unused=True)
    pairs = [(gi, vi, j) for j, (gi, vi) in enumerate(zip(g, v)) if gi is not None]
    found = [None] * len(xs)
    live = [(gi, vi) for gi, vi, _ in pairs if gi.requires_grad]
    if live:
        found = list(
            grad(
                [gi for gi, _ in live],
                xs,
                [vi for _, vi in live],
                create_graph=create_graph,
                allow_unused=True,
            )
        )
    found = _strict(found, strict, what)
    return (
        outs[0] if create_graph else outs[0].detach(),
        _mirror(_zeros_for_none(found, xs), in_tuple),
    )


def _check_scalar(outs, what: str):
    if len(outs) != 1 or outs[0].numel() != 1:
        raise RuntimeError(
            f"{what}: the function must return a single one-element Tensor, got "
            + ", ".join(str(tuple(o.shape)) for o in outs)
        )


def _strict(found, strict: bool, what: str):
    if strict and any(g is None for g in found):
        k = next(i for i, g in enumerate(found) if g is None)
        raise RuntimeError(
            f"{what}(strict=True): the output is independent of input {k}; pass "
            f"strict=False to get zeros"
        )
    return found


from ..ops import stack  # noqa: E402
from ..tensor import Tensor  # noqa: E402
