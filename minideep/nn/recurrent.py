"""Recurrent layers: RNN, LSTM and GRU cells and multi-layer sequence layers.

Parameter names, shapes, gate order and initialisation are PyTorch's, so weights copy
across with ``load_state_dict``. The maths lives in :mod:`minideep.ops.recurrent`: a whole
layer over a whole sequence is one node of the graph with a hand-written
backpropagation through time. A cell is the same op run for a single step.

Truncated backpropagation through time: train on a long sequence chunk by chunk and
carry the state across chunks *detached*, so each backward stops at its chunk::

    lstm = md.nn.LSTM(8, 16, batch_first=True)
    state = None                                     # zeros at the start of the sequence
    for start in range(0, x.shape[1], 20):           # x: (N, T, 8), 20 steps per chunk
        out, state = lstm(x[:, start : start + 20], state)
        loss = ((out - y[:, start : start + 20]) ** 2).mean()
        loss.backward()                              # through these 20 steps only
        optimizer.step()
        optimizer.zero_grad()
        state = tuple(s.detach() for s in state)     # keep the values, cut the graph

(For ``RNN`` and ``GRU`` the state is a single tensor: ``state = state.detach()``.)
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..ops.recurrent import gru_sequence, lstm_sequence, rnn_sequence
from ..ops.shape import cat, stack
from ..tensor import Tensor
from . import functional, init
from .module import Module, Parameter

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _new_parameter(*shape) -> Parameter:
    return Parameter(np.empty(shape, dtype=np.float32))


def _reset_uniform(module: Module, hidden_size: int) -> None:
    """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), PyTorch's recurrent initialisation."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _check_dtype(name: str, x: Tensor, weight: Tensor) -> None:
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{name}: input is {x.dtype} but the parameters are {weight.dtype}; convert one "
            f"of them (x.double() / module.double(), or x.float())"
        )


def _check_state(name: str, state: Tensor, expected: tuple, what: str) -> None:
    if tuple(state.shape) != expected:
        raise RuntimeError(f"{name}: expected {what} of shape {expected}, got {tuple(state.shape)}")


def _zeros(x: Tensor, shape: tuple) -> Tensor:
    return Tensor(x.xp.zeros(shape, dtype=x.dtype))


# ---------------------------------------------------------------------------- cells


class _CellBase(Module):
    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_gates: int):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = _new_parameter(num_gates * hidden_size, input_size)
        self.weight_hh = _new_parameter(num_gates * hidden_size, hidden_size)
        if bias:
            self.bias_ih = _new_parameter(num_gates * hidden_size)
            self.bias_hh = _new_parameter(num_gates * hidden_size)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"

    def _weights(self) -> tuple:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def _batched_input(self, input: Tensor) -> tuple[Tensor, bool]:
        """``input (N, I)`` or unbatched ``(I,)`` -> ``(1, N, I)``, a one-step sequence."""
        name = type(self).__name__
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{name}: expected input of shape (N, {self.input_size}) or "
                f"({self.input_size},), got {tuple(input.shape)}"
            )
        _check_dtype(name, input, self.weight_ih)
        batched = input.ndim == 2
        x = input.unsqueeze(0) if batched else input.reshape(1, 1, -1)
        return x, batched

    def _state(self, hx, x: Tensor, batched: bool) -> Tensor:
        shape = (x.shape[1], self.hidden_size)
        if hx is None:
            return _zeros(x, shape)
        _check_state(type(self).__name__, hx, shape if batched else shape[1:], "hidden state")
        return hx if batched else hx.reshape(*shape)


class RNNCell(_CellBase):
    """One step of an Elman RNN: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh).

    forward(input (N, I) or (I,), hx (N, H) or (H,) = zeros) -> h' (N, H) or (H,).
    ``nonlinearity`` is "tanh" or "relu". Parameters: ``weight_ih (H, I)``,
    ``weight_hh (H, H)``, ``bias_ih (H,)``, ``bias_hh (H,)``, all ~ U(-1/sqrt(H), 1/sqrt(H)).
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}: expected 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, num_gates=1)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity}"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._batched_input(input)
        h = self._state(hx, x, batched)
        _, h = rnn_sequence(x, h, *self._weights(), nonlinearity=self.nonlinearity)
        return h if batched else h.reshape(self.hidden_size)


class LSTMCell(_CellBase):
    """One step of an LSTM (gates i, f, g, o; see :class:`~minideep.ops.recurrent.LSTMSequence`).

    forward(input (N, I) or (I,), hx = (h (N, H), c (N, H)) or zeros) -> (h', c').
    Parameters: ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih``, ``bias_hh (4H,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, bias, num_gates=4)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        x, batched = self._batched_input(input)
        h, c = (None, None) if hx is None else hx
        h, c = self._state(h, x, batched), self._state(c, x, batched)
        _, h, c = lstm_sequence(x, h, c, *self._weights())
        if not batched:
            h, c = h.reshape(self.hidden_size), c.reshape(self.hidden_size)
        return h, c


class GRUCell(_CellBase):
    """One step of a GRU (gates r, z, n; see :class:`~minideep.ops.recurrent.GRUSequence`).

    forward(input (N, I) or (I,), hx (N, H) or (H,) = zeros) -> h' (N, H) or (H,).
    Parameters: ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, ``bias_ih``, ``bias_hh (3H,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, bias, num_gates=3)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._batched_input(input)
        h = self._state(hx, x, batched)
        _, h = gru_sequence(x, h, *self._weights())
        return h if batched else h.reshape(self.hidden_size)


# ---------------------------------------------------------------------------- layers


class _RNNBase(Module):
    """A stack of recurrent layers, optionally bidirectional, over a whole sequence.

    input: ``(T, N, I)``, ``(N, T, I)`` with ``batch_first``, or unbatched ``(T, I)``.
    Returns ``output (T, N, D*H)`` (batch-first / unbatched likewise) and the final state
    ``h_n (L*D, N, H)`` (LSTM: ``(h_n, c_n)``), D = 2 if bidirectional else 1, L layers.
    Layer ``l`` direction ``d`` has parameters ``weight_ih_l{l}``, ``weight_hh_l{l}``,
    ``bias_ih_l{l}``, ``bias_hh_l{l}`` (``_reverse`` appended for the backward direction).
    ``dropout`` is applied to the outputs of every layer but the last, in training only.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__()
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout={dropout} has no effect with num_layers=1: dropout is applied "
                "between recurrent layers only",
                stacklevel=2,
            )
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        directions = 2 if bidirectional else 1
        gates = _GATES[mode] * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                sfx = self._suffix(layer, direction)
                self.register_parameter(f"weight_ih{sfx}", _new_parameter(gates, layer_input))
                self.register_parameter(f"weight_hh{sfx}", _new_parameter(gates, hidden_size))
                if bias:
                    self.register_parameter(f"bias_ih{sfx}", _new_parameter(gates))
                    self.register_parameter(f"bias_hh{sfx}", _new_parameter(gates))
        self.reset_parameters()

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def reset_parameters(self) -> None:
        _reset_uniform(self, self.hidden_size)

    def _weights(self, layer: int, direction: int) -> tuple:
        sfx = self._suffix(layer, direction)
        names = (f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}", f"bias_hh{sfx}")
        return tuple(self._parameters.get(n) for n in names)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity=relu"
        for name, default in (("bias", True), ("batch_first", False), ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s

    def forward(self, input: Tensor, hx=None):
        name = type(self).__name__
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{name}: expected input of shape (T, N, {self.input_size}) "
                f"({'(N, T, ...)' if self.batch_first else 'time first'}) or unbatched "
                f"(T, {self.input_size}), got {tuple(input.shape)}"
            )
        _check_dtype(name, input, self.weight_ih_l0)
        batched = input.ndim == 3
        if not batched:
            x = input.unsqueeze(1)
        elif self.batch_first:
            x = input.transpose(0, 1)
        else:
            x = input
        directions = 2 if self.bidirectional else 1
        states = self._initial_states(hx, x, batched, directions)

        finals = []  # the final state of every layer and direction, in PyTorch's order
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                state = states[layer * directions + direction]
                out, final = self._run_layer(x, state, layer, direction)
                outputs.append(out)
                finals.append(final)
            x = outputs[0] if directions == 1 else _cat_features(outputs)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = functional.dropout(x, p=self.dropout, training=True)

        if not batched:
            output = x.squeeze(1)
        elif self.batch_first:
            output = x.transpose(0, 1)
        else:
            output = x
        if self.mode == "LSTM":
            h_n = _stack_states([f[0] for f in finals], batched)
            c_n = _stack_states([f[1] for f in finals], batched)
            return output, (h_n, c_n)
        return output, _stack_states(finals, batched)

    def _run_layer(self, x: Tensor, state, layer: int, direction: int):
        weights = self._weights(layer, direction)
        reverse = direction == 1
        if self.mode == "LSTM":
            out, h, c = lstm_sequence(x, state[0], state[1], *weights, reverse=reverse)
            return out, (h, c)
        if self.mode == "GRU":
            return gru_sequence(x, state, *weights, reverse=reverse)
        nonlinearity = "relu" if self.mode == "RNN_RELU" else "tanh"
        return rnn_sequence(x, state, *weights, nonlinearity=nonlinearity, reverse=reverse)

    def _initial_states(self, hx, x: Tensor, batched: bool, directions: int) -> list:
        """One initial state per layer and direction (LSTM: an (h, c) pair each)."""
        count, n = self.num_layers * directions, x.shape[1]
        expected = (count, n, self.hidden_size) if batched else (count, self.hidden_size)
        if hx is None:
            zeros = _zeros(x, (n, self.hidden_size))
            return [(zeros, zeros) if self.mode == "LSTM" else zeros] * count
        name = type(self).__name__
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: the initial state must be a pair (h_0, c_0)")
            _check_state(name, hx[0], expected, "h_0")
            _check_state(name, hx[1], expected, "c_0")
            h0, c0 = (s if batched else s.unsqueeze(1) for s in hx)
            return [(h0[k], c0[k]) for k in range(count)]
        _check_state(name, hx, expected, "h_0")
        h0 = hx if batched else hx.unsqueeze(1)
        return [h0[k] for k in range(count)]


def _cat_features(outputs: list) -> Tensor:
    """The two directions' outputs (T, N, H) side by side: (T, N, 2H)."""
    return cat(outputs, dim=2)


def _stack_states(states: list, batched: bool) -> Tensor:
    """Per-layer final states (N, H) -> (L*D, N, H), or (L*D, H) for unbatched input."""
    out = stack(states, dim=0)
    return out if batched else out.squeeze(1)


class RNN(_RNNBase):
    """A multi-layer Elman RNN (tanh or relu). Parameters per layer: ``weight_ih_l{k}
    (H, I or D*H)``, ``weight_hh_l{k} (H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k} (H,)``.

    forward(input, hx (L*D, N, H) = zeros) -> (output, h_n); shapes in :class:`_RNNBase`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}: expected 'tanh' or 'relu'")
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """A multi-layer LSTM (gates i, f, g, o). Parameters per layer: ``weight_ih_l{k}
    (4H, I or D*H)``, ``weight_hh_l{k} (4H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k} (4H,)``.

    forward(input, (h_0, c_0) each (L*D, N, H) = zeros) -> (output, (h_n, c_n)).
    The module docstring shows truncated backpropagation through time with it.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )


class GRU(_RNNBase):
    """A multi-layer GRU (gates r, z, n). Parameters per layer: ``weight_ih_l{k}
    (3H, I or D*H)``, ``weight_hh_l{k} (3H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k} (3H,)``.

    forward(input, hx (L*D, N, H) = zeros) -> (output, h_n).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
        )
