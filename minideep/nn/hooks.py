"""Module hooks: the handle that removes one, and how a full backward hook is called.

A full backward hook, ``hook(module, grad_input, grad_output)``, must see the gradients
with respect to the module's inputs and outputs, but a Module is not a node of the graph:
its forward is many ops. So, as in PyTorch (``torch/utils/hooks.py``, ``BackwardHook``),
each call of a hooked module puts an identity node on each side of its forward::

    inputs -> [identity] -> forward's ops -> [identity] -> outputs
               ^ calls the hooks             ^ records grad_output

The walk runs a node after every node that consumes it, so the identity on the outputs
runs first and records ``grad_output``; the one on the inputs runs once the gradients of
all the inputs are complete, calls the hooks, and passes on what they return.
"""

from __future__ import annotations

import itertools
import warnings
import weakref

from ..autograd import Function, is_grad_enabled
from ..creation import zeros_like
from ..tensor import Tensor

_handle_ids = itertools.count()


class RemovableHandle:
    """What ``register_*_hook`` returns: ``handle.remove()`` unregisters the hook.

    Hooks live in ordered dicts keyed by ``handle.id``, so they run in the order they
    were registered; ``extra_dict`` names dicts that hold flags for the same id. The
    handle is also a context manager that removes the hook on exit.
    """

    def __init__(self, hooks_dict: dict, *, extra_dict: dict | list | None = None):
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = next(_handle_ids)
        extras = [extra_dict] if isinstance(extra_dict, dict) else extra_dict or []
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extras)

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            hooks = ref()
            if hooks is not None:
                hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class BackwardHookFunction(Function):
    """Identity on tensors whose backward hands the gradients to ``on_backward``.

    forward: ``(t_1, ..., t_n) -> (t_1, ..., t_n)``; backward: ``on_backward(grads)``,
    the gradients themselves unless a hook replaced them. It makes no array-specific call,
    so it works on raw arrays and, with ``create_graph=True``, on Tensors.
    """

    @staticmethod
    def forward(ctx, *arrays, on_backward):
        ctx.on_backward = on_backward
        return arrays

    @staticmethod
    def backward(ctx, *grads):
        return ctx.on_backward(grads)


class BackwardHook:
    """The state that one call of a module with full backward hooks shares between the
    identity node on its inputs and the one on its outputs."""

    def __init__(self, module, hooks: list):
        self.module = module
        self.hooks = hooks
        self.grad_outputs = None  # set by the outputs' node, cleared once the hooks ran
        self.n_inputs = 0
        self.input_index = None  # positions of the inputs that pass through the identity
        self.input_shapes = []
        self.constant_inputs = {}  # position -> a Tensor input that needs no grad
        self.n_outputs = 0
        self.output_index = None

    def setup_input_hook(self, args: tuple) -> tuple:
        """``args`` with each Tensor that requires grad replaced by its identity."""
        self.n_inputs = len(args)
        index = _differentiable(args)
        if index is None:
            return args
        self.input_index = index
        self.input_shapes = [tuple(args[i].shape) for i in index]
        self.constant_inputs = {
            i: a for i, a in enumerate(args) if isinstance(a, Tensor) and i not in index
        }
        wrapped = BackwardHookFunction.apply(
            *(args[i] for i in index), on_backward=self._on_grad_inputs
        )
        return _replace(args, index, wrapped)

    def setup_output_hook(self, output):
        """``output`` (a Tensor or a tuple) with its Tensors that require grad replaced by
        their identity."""
        if not isinstance(output, (Tensor, tuple)):
            warnings.warn(
                "For backward hooks to be called, module output should be a Tensor or a "
                f"tuple of Tensors but received {type(output)}",
                stacklevel=4,  # the line that called the module
            )
        outputs = output if isinstance(output, tuple) else (output,)
        self.n_outputs = len(outputs)
        index = _differentiable(outputs)
        if index is None:
            return output
        self.output_index = index
        wrapped = BackwardHookFunction.apply(
            *(outputs[i] for i in index), on_backward=self._on_grad_outputs
        )
        wrapped = _replace(outputs, index, wrapped)
        return wrapped if isinstance(output, tuple) else wrapped[0]

    def _on_grad_outputs(self, grads: tuple) -> tuple:
        self.grad_outputs = _pack(self.output_index, grads, self.n_outputs)
        if self.input_index is None:  # no input requires grad: the hooks fire now
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to "
                "module outputs since no inputs require gradients.",
                stacklevel=2,
            )
            grad_input = (None,) * self.n_inputs
            for hook in self.hooks:
                result = hook(self.module, grad_input, self.grad_outputs)
                if result is not None and not (
                    isinstance(result, tuple) and all(g is None for g in result)
                ):
                    raise RuntimeError(
                        "Backward hook for Modules where no input requires gradient should "
                        "always return None or None for all gradients."
                    )
            self.grad_outputs = None
        return grads

    def _on_grad_inputs(self, grads: tuple) -> tuple:
        if self.grad_outputs is None:
            # The gradient reached the inputs without passing through the outputs (a
            # gradient of a gradient, say): there is no grad_output to call the hooks with.
            return grads
        grad_input = _pack(self.input_index, grads, self.n_inputs)
        if self.constant_inputs:  # PyTorch gives a Tensor input that needs no grad zeros
            grad_input = tuple(
                zeros_like(self.constant_inputs[i]) if i in self.constant_inputs else g
                for i, g in enumerate(grad_input)
            )
        for hook in self.hooks:
            result = hook(self.module, grad_input, self.grad_outputs)
            if result is None:
                continue
            if not isinstance(result, (tuple, list)) or len(result) != self.n_inputs:
                got = len(result) if isinstance(result, (tuple, list)) else type(result).__name__
                raise RuntimeError(
                    "Backward hook returned an invalid number of grad_input, "
                    f"got {got}, but expected {self.n_inputs}"
                )
            grad_input = tuple(result)
        self.grad_outputs = None
        as_tensors = any(isinstance(g, Tensor) for g in grads)  # the walk builds a graph
        return tuple(
            self._gradient(grad_input[i], shape, as_tensors)
            for i, shape in zip(self.input_index, self.input_shapes)
        )

    def _gradient(self, g, shape: tuple, as_tensor: bool):
        """A hook's gradient for an input of ``shape``, as the walk wants it (an array, or a
        Tensor when it builds a graph)."""
        if g is None:
            return None
        if tuple(g.shape) != shape:
            raise RuntimeError(
                f"full backward hook of {type(self.module).__name__} returned a gradient of "
                f"shape {tuple(g.shape)} for an input of shape {shape}"
            )
        if as_tensor:
            return g if isinstance(g, Tensor) else Tensor(g)
        return g.data if isinstance(g, Tensor) else g


def _differentiable(values: tuple) -> list | None:
    """Positions of the Tensors that require grad, or None when none does (or no graph is
    being recorded)."""
    if not is_grad_enabled():
        return None
    index = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
    return index or None


def _replace(values: tuple, index: list, new: tuple) -> tuple:
    values_list = list(values)
    for i, v in zip(index, new):
        values_list[i] = v
    if type(values) is tuple:
        return tuple(values_list)
    return type(values)(*values_list)  # a namedtuple keeps its type


def _pack(index: list, grads: tuple, size: int) -> tuple:
    """The gradients at their positions among ``size`` values, None elsewhere; what a hook
    sees is a Tensor."""
    packed = [None] * size
    for i, g in zip(index, grads):
        packed[i] = g if g is None or isinstance(g, Tensor) else Tensor(g)
    return tuple(packed)
