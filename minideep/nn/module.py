"""``Module`` and ``Parameter``: the building blocks of networks.

A Module owns parameters (tensors that the optimiser updates), buffers (state that is
saved but not trained, such as batch-norm running statistics) and sub-modules. Assigning
one of those as an attribute registers it, as in PyTorch, so ``named_parameters``,
``state_dict``, ``to`` and ``train``/``eval`` reach the whole tree.

Hooks, as in PyTorch: ``register_forward_pre_hook``, ``register_forward_hook`` and
``register_full_backward_hook`` (see ``hooks.py`` for how the last one sees gradients).
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..tensor import Tensor
from .hooks import BackwardHook, RemovableHandle

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

_HOOK_DICTS = (
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_backward_hooks",
)


class Parameter(Tensor):
    """A tensor that is a trainable weight of a Module (``requires_grad=True``)."""

    def __init__(self, data, requires_grad: bool = True):
        array = data.data if isinstance(data, Tensor) else data
        super().__init__(
            array,
            requires_grad=requires_grad,
            dtype=getattr(array, "dtype", None),  # keep float64 data float64
            device=backend.device_of(array),
        )

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model. Subclasses define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        for name in _HOOK_DICTS:  # handle id -> hook (or flag), in registration order
            object.__setattr__(self, name, OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ hooks
    def register_forward_pre_hook(
        self, hook, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``forward``; what it returns, unless
        None, replaces ``args`` (a single value becomes a 1-tuple). With ``with_kwargs``
        it is ``hook(module, args, kwargs)`` and returns None or ``(args, kwargs)``.
        ``prepend`` runs it before the hooks already registered."""
        handle = RemovableHandle(
            self._forward_pre_hooks, extra_dict=self._forward_pre_hooks_with_kwargs
        )
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(
        self, hook, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``forward``; what it returns,
        unless None, replaces ``output``. With ``with_kwargs`` it is
        ``hook(module, args, kwargs, output)``."""
        handle = RemovableHandle(self._forward_hooks, extra_dict=self._forward_hooks_with_kwargs)
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to
        the module's inputs are computed.

        ``grad_input`` has one entry per positional argument of the call: the gradient
        for a Tensor that requires grad, zeros for another Tensor, None for a non-Tensor;
        ``grad_output`` one per output (a Tensor or the items of a tuple; None for an
        entry that does not require grad). A tuple returned by the hook replaces
        ``grad_input``. When no input requires grad the hook fires (with a warning) as
        soon as ``grad_output`` is known, with ``grad_input`` all None, and must return
        None; when no output requires grad, or under ``no_grad``, it does not fire.
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        """``__call__`` once a hook is registered: PyTorch's order of events."""
        for hook_id, hook in tuple(self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple of "
                            f"(new_args, new_kwargs), but got {result}."
                        )
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)

        backward_hook = None
        if self._backward_hooks:
            backward_hook = BackwardHook(self, list(self._backward_hooks.values()))
            args = backward_hook.setup_input_hook(args)

        output = self.forward(*args, **kwargs)

        for hook_id, hook in tuple(self._forward_hooks.items()):
            if hook_id in self._forward_hooks_with_kwargs:
                result = hook(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result

        if backward_hook is not None:
            output = backward_hook.setup_output_hook(output)
        return output

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() is called in "
                f"{type(self).__name__}.__init__"
            )
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                    f"{type(self).__name__} (expected a Parameter or None)"
                )
            self._parameters[name] = None
        elif name in self._modules:
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Keep ``tensor`` as state of this module (saved in ``state_dict`` unless not
        ``persistent``; moved by ``to``; not trained)."""
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (``None`` records an absent optional parameter such as a bias)."""
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # ------------------------------------------------------------ traversal
    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ):
        """Yield ``(name, module)`` for this module and then each child's tree, depth first
        in registration order; a module reached twice is yielded once unless
        ``remove_duplicate=False``. ``memo`` holds the modules already yielded."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                child_prefix = f"{prefix}.{name}" if prefix else name
                yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self, remove_duplicate: bool = True):
        for _, module in self.named_modules(remove_duplicate=remove_duplicate):
            yield module

    def named_children(self):
        """Yield ``(name, child)`` for each direct sub-module, each once."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """Yield ``(dotted name, parameter)``, each parameter once."""
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix=prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    # ------------------------------------------------------------ state
    def state_dict(self) -> OrderedDict:
        """Ordered ``name -> numpy array`` of every parameter and persistent buffer.

        The order and names are PyTorch's: a module's own parameters, then its buffers,
        then each child's entries under ``child_name.``.
        """
        out = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    out[prefix + name] = p.numpy().copy()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    out[prefix + name] = b.numpy().copy()
        return out

    def _state_tensors(self) -> OrderedDict:
        out = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    out[prefix + name] = p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    out[prefix + name] = b
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` (name -> array or Tensor) into this module.

        Mis-shaped entries always raise; with ``strict`` missing and unexpected keys raise
        too. The error lists every offending key. Values are converted to each
        parameter's dtype and device.
        """
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mis_shaped = []
        for k, t in own.items():
            if k in state_dict:
                shape = tuple(np.shape(_host_array(state_dict[k])))
                if shape != tuple(t.shape):
                    mis_shaped.append(f"{k}: expected {tuple(t.shape)}, got {shape}")
        problems = []
        if mis_shaped:
            problems.append("mis-shaped keys: " + "; ".join(mis_shaped))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise RuntimeError(
                f"error loading state_dict into {type(self).__name__}:\n  " + "\n  ".join(problems)
            )
        for k, t in own.items():
            if k in state_dict:
                value = np.array(_host_array(state_dict[k]), dtype=t.dtype)
                t.data = backend.to_device(value, t.device)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ modes, devices, dtypes
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (set them to None, as PyTorch does)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` of every parameter (False freezes the module)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def _apply_to_arrays(self, fn) -> Module:
        for t in list(self.parameters()) + list(self.buffers()):
            t.data = fn(t.data)
            if t.grad is not None:
                t.grad = Tensor(fn(t.grad.data))
        return self

    def to(self, target) -> Module:
        """Move every parameter and buffer to a device (``"cpu"``/``"cuda"``), or cast
        the floating ones to a dtype."""
        if isinstance(target, str):
            device = backend.check_device(target)
            return self._apply_to_arrays(lambda a: backend.to_device(a, device))
        dtype = np.dtype(target)
        return self._apply_to_arrays(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self) -> Module:
        return self.to("cuda")

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    def apply(self, fn) -> Module:
        """Call ``fn`` on each child's tree (``child.apply(fn)``) and then on this module:
        post-order, as PyTorch does."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


def _host_array(value):
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        return value.detach().cpu().numpy()
    return backend.as_numpy(value) if not isinstance(value, (int, float)) else np.asarray(value)


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (unlike a plain Python list)."""

    def __init__(self, modules=None):
        super().__init__()
        for module in modules or []:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
