"""Gradient checks of the recurrent ops: every cell (one step), every sequence op over
several steps, without biases, backwards in time, and two layers stacked batch-first."""

from __future__ import annotations

import minideep as md
from minideep.ops.recurrent import gru_sequence, lstm_sequence, rnn_sequence

from . import Case, randn

T, N, I, H = 4, 2, 3, 2  # steps, batch, input size, hidden size


def _weights(gates: int, bias: bool = True, input_size: int = I) -> list:
    specs = [randn(gates * H, input_size), randn(gates * H, H)]
    return specs + ([randn(gates * H), randn(gates * H)] if bias else [])


def _rnn(nonlinearity="tanh", reverse=False):
    def fn(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        return rnn_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, reverse)

    return fn


def _lstm(reverse=False):
    def fn(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        return lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)

    return fn


def _gru(reverse=False):
    def fn(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        return gru_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, reverse)

    return fn


def _lstm_two_layers_batch_first(x, h0, c0, *w):
    """x (N, T, I) through two stacked LSTM layers, the way ``nn.LSTM`` composes them."""
    out, h1, c1 = lstm_sequence(x.transpose(0, 1), h0[0], c0[0], *w[:4])
    out, h2, c2 = lstm_sequence(out, h0[1], c0[1], *w[4:])
    return out.transpose(0, 1), md.stack([h1, h2]), md.stack([c1, c2])


def _gru_two_layers_batch_first(x, h0, *w):
    out, h1 = gru_sequence(x.transpose(0, 1), h0[0], *w[:4])
    out, h2 = gru_sequence(out, h0[1], *w[4:])
    return out.transpose(0, 1), md.stack([h1, h2])


def _cell_inputs(gates: int, bias: bool = True, states: int = 1) -> list:
    return [randn(1, N, I)] + [randn(N, H)] * states + _weights(gates, bias)


def _sequence_inputs(gates: int, bias: bool = True, states: int = 1) -> list:
    return [randn(T, N, I)] + [randn(N, H)] * states + _weights(gates, bias)


CASES = [
    # cells: a sequence of one step
    Case("rnn cell tanh", _rnn(), _cell_inputs(1)),
    Case("rnn cell relu", _rnn("relu"), _cell_inputs(1)),
    Case("rnn cell no bias", _rnn(), _cell_inputs(1, bias=False)),
    Case("lstm cell", _lstm(), _cell_inputs(4, states=2)),
    Case("lstm cell no bias", _lstm(), _cell_inputs(4, bias=False, states=2)),
    Case("gru cell", _gru(), _cell_inputs(3)),
    Case("gru cell no bias", _gru(), _cell_inputs(3, bias=False)),
    # sequences: backpropagation through several steps
    Case("rnn sequence tanh", _rnn(), _sequence_inputs(1)),
    Case("rnn sequence relu", _rnn("relu"), _sequence_inputs(1)),
    Case("rnn sequence reverse", _rnn(reverse=True), _sequence_inputs(1)),
    Case("lstm sequence", _lstm(), _sequence_inputs(4, states=2)),
    Case("lstm sequence no bias", _lstm(), _sequence_inputs(4, bias=False, states=2)),
    Case("lstm sequence reverse", _lstm(reverse=True), _sequence_inputs(4, states=2)),
    Case("gru sequence", _gru(), _sequence_inputs(3)),
    Case("gru sequence no bias", _gru(), _sequence_inputs(3, bias=False)),
    Case("gru sequence reverse", _gru(reverse=True), _sequence_inputs(3)),
    # two stacked layers, batch first
    Case(
        "lstm two layers batch_first",
        _lstm_two_layers_batch_first,
        [randn(N, T, I), randn(2, N, H), randn(2, N, H)] + _weights(4) + _weights(4, input_size=H),
    ),
    Case(
        "gru two layers batch_first",
        _gru_two_layers_batch_first,
        [randn(N, T, I), randn(2, N, H)] + _weights(3) + _weights(3, input_size=H),
    ),
]
