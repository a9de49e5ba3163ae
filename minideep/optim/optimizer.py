"""``Optimizer``: the base class that holds parameter groups and per-parameter state.

An optimiser owns a list of *parameter groups*. Each group is a dict with the key
``"params"`` (a list of Parameters) and one key per hyper-parameter (``"lr"``,
``"momentum"``, ...). Changing ``optimizer.param_groups[0]["lr"]`` changes the step size
of the next ``step()``; this is exactly what the learning-rate schedulers do.

Per-parameter state (momentum buffers, Adam's moment estimates, step counts) lives in
``optimizer.state[param]``, a dict created on the parameter's first update. Its arrays
live on the parameter's device and are updated in place. A gradient array is never
modified: ``grad = grad + weight_decay * p.data`` makes a new array.

A subclass writes two methods:

* ``_init_state(p, group)`` - the state dict of a parameter before its first update;
* ``_update(p, grad, state, group)`` - one update of ``p.data`` (in place) from the
  gradient array ``grad``, reading and updating ``state``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .. import backend
from ..autograd import enable_grad
from ..tensor import Tensor


class Optimizer:
    """Base class of every optimiser.

    ``params`` is an iterable of Parameters, or of dicts (parameter groups) such as
    ``[{"params": model.body.parameters()}, {"params": model.head.parameters(), "lr": 1e-2}]``;
    a key a group leaves out takes its value from ``defaults``.
    """

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params must be an iterable of Parameters or of dicts, got a single Tensor "
                "(wrap it in a list: [p])"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (e.g. a new layer)."""
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor (one made by an operation)")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            raise ValueError("a parameter group lists the same parameter twice")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: ``p.grad = None`` (or zeros if not
        ``set_to_none``), so that the next ``backward()`` starts from scratch."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = Tensor(p.xp.zeros_like(p.data))

    def step(self, closure: Callable | None = None):
        """Update every parameter that has a gradient, once.

        ``closure``, if given, re-evaluates the model and returns the loss (it is called
        with gradient recording on, before the update); ``step`` returns that loss.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self._init_state(p, group)
                self._update(p, p.grad.data, state, group)
        return loss

    def _init_state(self, p: Tensor, group: dict) -> dict:
        return {}

    def _update(self, p: Tensor, grad, state: dict, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no _update()")

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The optimiser's state, in PyTorch's layout, as host (numpy) copies::

            {"state": {0: {"step": 3, "exp_avg": array, ...}, 1: {...}},
             "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), ..., "params": [0, 1]}]}

        Parameters are numbered in the order of ``param_groups``; the state of a
        parameter that was never updated is absent.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            state[index[id(p)]] = {
                k: backend.as_numpy(v).copy() if _is_array(v) else v for k, v in s.items()
            }
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the state saved by :meth:`state_dict` (hyper-parameters included).

        The optimiser must have been built over the same parameters, grouped the same
        way. State arrays are copied onto each parameter's device and dtype.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, but this "
                f"optimizer has {len(self.param_groups)}"
            )
        params_by_index = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"parameter group {i} of the loaded state dict has "
                    f"{len(saved['params'])} parameters, but this optimizer's has "
                    f"{len(group['params'])}"
                )
            params_by_index.update(zip(saved["params"], group["params"]))

        state = {}
        for index, saved_state in state_dict["state"].items():
            p = params_by_index[int(index)]
            state[p] = {k: _to_param_array(v, p) for k, v in saved_state.items()}
        self.state = state
        for saved, group in zip(saved_groups, self.param_groups):
            params = group["params"]
            group.clear()  # in place, so that a scheduler holding this dict sees the change
            group.update({k: v for k, v in saved.items() if k != "params"})
            group["params"] = params

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in group if k != "params"):
                lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or backend.is_cupy_array(value)


def _to_param_array(value, p: Tensor):
    """A copy of a saved state value on ``p``'s device, floats in ``p``'s dtype."""
    if isinstance(value, Tensor):
        value = value.numpy()
    if not _is_array(value):
        return value
    array = np.array(backend.as_numpy(value))
    if array.dtype.kind == "f":
        array = array.astype(p.dtype, copy=False)
    return backend.to_device(array, p.device)
