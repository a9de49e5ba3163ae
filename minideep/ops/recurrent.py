"""Recurrent ops: the RNN, LSTM and GRU recurrences over a whole sequence.

Each recurrence is *one* node of the graph for a whole layer and sequence, with
backpropagation through time written out by hand in its ``backward``. Building the
recurrence out of small ops instead (a matmul, an add, three sigmoids, ... per step)
would give a hundred-step sequence a graph of a few thousand nodes; here it has one.

All three share the same plan, which is where the speed comes from:

* forward: the inputs of *all* time steps go through one matrix product,
  ``gx = x (T*N, I) @ W_ih^T + b_ih``, because they do not depend on the recurrence.
  Each step then does one product for all its gates, ``gh = h_{t-1} @ W_hh^T (+ b_hh)``,
  and the gate nonlinearities.
* backward: the local derivatives of the gates (``s (1 - s)`` for a sigmoid, ``1 - y^2``
  for a tanh, ...) depend only on values saved by the forward, so they are computed for
  all steps at once, vectorised. What is left for the loop, walking the steps from last
  to first, is the chain itself: each step multiplies the gradient reaching its state by
  those local derivatives to get the gradient of its gate pre-activations ``dgates_t``
  (N, G*H), and passes ``dgates_t @ W_hh`` down to ``h_{t-1}``. The ``dgates`` of every
  step are kept, so the weight gradients are again one matrix product each:

      dW_ih = sum_t dgx_t^T x_t       = dGx (T*N, G*H)^T @ x (T*N, I)
      dW_hh = sum_t dgh_t^T h_{t-1}   = dGh (T*N, G*H)^T @ H_prev (T*N, H)
      dx    = dGx @ W_ih,   db_ih = sum dGx,   db_hh = sum dGh

  (``dgx`` and ``dgh``, the gradients of the input and the hidden projections, are the
  same array except in the GRU, where the reset gate sits between ``W_hn h`` and ``n``.)

Shapes: ``x (T, N, I)`` time-major, states ``(N, H)``, weights as in PyTorch:
``W_ih (G*H, I)``, ``W_hh (G*H, H)``, ``b_ih``, ``b_hh (G*H,)`` (either bias may be
``None``), with G = 1 (RNN), 4 (LSTM, gates i, f, g, o) or 3 (GRU, gates r, z, n).
``reverse=True`` runs the sequence from its last step to its first (the backward
direction of a bidirectional layer); outputs stay in time order.

Gradients of gradients (``create_graph=True``) take another road: the backward then
differentiates the same recurrence written step by step in differentiable ops
(:func:`rnn_unrolled`, :func:`lstm_unrolled`, :func:`gru_unrolled`, the recurrences as
a textbook writes them), so the gradient is a graph of small ops that can be
differentiated again. It is slower, and only taken when a graph is asked for.

Truncated backpropagation through time needs nothing from these ops: pass the final
state of one chunk, ``detach()``-ed, as the initial state of the next, and the graph
(and so the gradient) stops at the chunk boundary.
"""

from __future__ import annotations

from .. import fast
from ..autograd import Function, grad
from ..backend import get_array_module
from ..tensor import Tensor
from . import activation, shape
from .activation import stable_sigmoid as sigmoid


def _project_inputs(x, w_ih, biases):
    """gx (T, N, G*H) = x @ W_ih^T + every bias in ``biases``: one GEMM for all steps.

    Returns gx and x as a contiguous (T*N, I) matrix (kept for dW_ih)."""
    T, N, I = x.shape
    x2d = x.reshape(T * N, I)
    gx = x2d @ w_ih.T
    for b in biases:
        if b is not None:
            gx += b
    return gx.reshape(T, N, -1), x2d


def _in_processing_order(x, reverse: bool):
    """The time-major sequence ``x (T, ...)`` in the order the recurrence visits it: a
    reversed view when running backwards (and the same call puts it back)."""
    return x[::-1] if reverse else x


def _input_and_weight_grads(ctx, dgx, dgh):
    """Gradients of x, W_ih, W_hh, b_ih, b_hh from the per-step gate gradients.

    dgx, dgh: (T, N, G*H) in processing order. One GEMM per weight for the whole sequence.
    """
    x2d, h_all, w_ih = ctx.saved_tensors[:3]
    h_prev = h_all[:-1]
    T, N, G = dgx.shape
    needs = dict(zip(ctx.arg_names, ctx.needs_input_grad))
    dgx2d = dgx.reshape(T * N, G)
    dgh2d = dgh.reshape(T * N, G)
    dx = dw_ih = dw_hh = db_ih = db_hh = None
    if needs["x"]:
        dx = _in_processing_order((dgx2d @ w_ih).reshape(T, N, -1), ctx.reverse)
    if needs["w_ih"]:
        dw_ih = dgx2d.T @ x2d
    if needs["w_hh"]:
        dw_hh = dgh2d.T @ h_prev.reshape(T * N, -1)
    if needs["b_ih"]:
        db_ih = dgx2d.sum(axis=0)
    if needs["b_hh"]:
        db_hh = dgh2d.sum(axis=0)
    return dx, dw_ih, dw_hh, db_ih, db_hh


def _save_common(ctx, names, x2d, h_all, w_ih, w_hh, reverse, *more):
    """Keep what every backward needs, then ``more`` arrays of this recurrence's own;
    ``h_all`` is (T+1, N, H): h0 then each new state."""
    ctx.save_for_backward(x2d, h_all, w_ih, w_hh, *more)
    ctx.arg_names, ctx.reverse = names, reverse


class RNNSequence(Function):
    """Elman RNN over a sequence: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

    forward(x (T, N, I), h0 (N, H), w_ih (H, I), w_hh (H, H), b_ih, b_hh, nonlinearity,
    reverse) -> (out (T, N, H), h_n (N, H)); ``nonlinearity`` is "tanh" or "relu".

    Backward through one step, with g_h the gradient reaching h_t (from out_t and from
    step t+1): the pre-activation gets dpre_t = g_h * act'(.), where
    tanh' = 1 - h_t^2 and relu' = [h_t > 0]; then dL/dh_{t-1} = dpre_t @ W_hh.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", reverse=False):
        xp = get_array_module(x)
        gx, x2d = _project_inputs(_in_processing_order(x, reverse), w_ih, (b_ih, b_hh))
        T, N, H = gx.shape
        h_all = xp.empty((T + 1, N, H), dtype=gx.dtype)
        h_all[0] = h0
        w_hh_t = xp.ascontiguousarray(w_hh.T)  # a contiguous operand makes each GEMM faster
        for t in range(T):
            h = h_all[t + 1]
            xp.matmul(h_all[t], w_hh_t, out=h)
            h += gx[t]
            if nonlinearity == "tanh":
                xp.tanh(h, out=h)
            else:
                xp.maximum(h, 0, out=h)
        _save_common(ctx, _ARGS_RNN, x2d, h_all, w_ih, w_hh, reverse)
        ctx.nonlinearity = nonlinearity
        return _in_processing_order(h_all[1:], reverse), h_all[T]

    @staticmethod
    def backward(ctx, dout, dh_n):
        if ctx.create_graph:
            return _through_unrolled(ctx, (dout, dh_n), rnn_unrolled)
        xp = get_array_module(dout)
        dout = _in_processing_order(dout, ctx.reverse)
        _, h_all, _, w_hh = ctx.saved_tensors
        h = h_all[1:]
        local = 1 - h * h if ctx.nonlinearity == "tanh" else (h > 0).astype(h.dtype)
        dpre = xp.empty(dout.shape, dtype=dout.dtype)
        dh = dh_n
        for t in range(dout.shape[0] - 1, -1, -1):
            dh = dh + dout[t]
            xp.multiply(dh, local[t], out=dpre[t])
            dh = dpre[t] @ w_hh
        dx, dw_ih, dw_hh, db_ih, db_hh = _input_and_weight_grads(ctx, dpre, dpre)
        return dx, dh, dw_ih, dw_hh, db_ih, db_hh, None, None


class LSTMSequence(Function):
    """LSTM over a sequence (gate order i, f, g, o, as in PyTorch):

        i, f, o = sigmoid(.), g = tanh(.)   of   x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    forward(x (T, N, I), h0 (N, H), c0 (N, H), w_ih (4H, I), w_hh (4H, H), b_ih, b_hh,
    reverse) -> (out (T, N, H), h_n (N, H), c_n (N, H)).

    Backward through one step, given g_h (reaching h_t from out_t and step t+1) and g_c
    (reaching c_t from step t+1):

        g_c  += g_h * o * (1 - tanh(c_t)^2)
        d_o   = g_h * tanh(c_t)
        d_i   = g_c * g,   d_g = g_c * i,   d_f = g_c * c_{t-1}
        dgates = [d_i i(1-i), d_f f(1-f), d_g (1-g^2), d_o o(1-o)]   (sigmoid' = s(1-s))
        dL/dh_{t-1} = dgates @ W_hh,   dL/dc_{t-1} = g_c * f

    so dgates = [g_c * A_i, g_c * A_f, g_c * A_g, g_h * A_o] with local factors
    A_i = g i (1-i), A_f = c_{t-1} f (1-f), A_g = i (1-g^2), A_o = tanh(c_t) o (1-o), and
    g_c gains g_h * B with B = o (1 - tanh(c_t)^2): A and B are computed for all steps
    before the loop. The steps themselves are :func:`lstm_steps` and
    :func:`lstm_steps_backward`; their fast paths (all gates through one sigmoid on the
    CPU, one CUDA kernel on the GPU) are in ``fast/recurrent.py``.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False):
        gx, x2d = _project_inputs(_in_processing_order(x, reverse), w_ih, (b_ih, b_hh))
        ctx.fast = fast.recurrent.lstm(x, w_hh.shape[1])  # one sigmoid (CPU), CUDA kernel
        steps = ctx.fast.forward if ctx.fast else lstm_steps
        acts, h_all, c_all, tanh_c = steps(gx, h0, c0, w_hh)
        _save_common(ctx, _ARGS_LSTM, x2d, h_all, w_ih, w_hh, reverse, acts, c_all, tanh_c)
        T = gx.shape[0]
        return _in_processing_order(h_all[1:], reverse), h_all[T], c_all[T]

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        if ctx.create_graph:
            return _through_unrolled(ctx, (dout, dh_n, dc_n), lstm_unrolled)
        dout = _in_processing_order(dout, ctx.reverse)
        _, _, _, w_hh, acts, c_all, tanh_c = ctx.saved_tensors
        steps_back = ctx.fast.backward if ctx.fast and ctx.fast.backward else lstm_steps_backward
        dgates, dh, dc = steps_back(dout, dh_n, dc_n, acts, c_all, tanh_c, w_hh)
        dx, dw_ih, dw_hh, db_ih, db_hh = _input_and_weight_grads(ctx, dgates, dgates)
        return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, None


def lstm_steps(gx, h0, c0, w_hh):
    """The LSTM recurrence, step by step: gx (T, N, 4H) (the input projections), h0, c0
    (N, H), w_hh (4H, H) -> acts (T, N, 4H) (i, f, g, o after their nonlinearity),
    h_all, c_all (T+1, N, H) (the initial states, then every step's), tanh_c (T, N, H)."""
    xp = get_array_module(gx)
    T, N, G = gx.shape
    H = G // 4
    acts = xp.empty((T, N, G), dtype=gx.dtype)
    h_all = xp.empty((T + 1, N, H), dtype=gx.dtype)
    c_all = xp.empty((T + 1, N, H), dtype=gx.dtype)
    tanh_c = xp.empty((T, N, H), dtype=gx.dtype)
    h_all[0], c_all[0] = h0, c0
    for t in range(T):
        pre = gx[t] + h_all[t] @ w_hh.T  # (N, 4H): the four gates' pre-activations
        i = sigmoid(pre[:, :H])
        f = sigmoid(pre[:, H : 2 * H])
        g = xp.tanh(pre[:, 2 * H : 3 * H])
        o = sigmoid(pre[:, 3 * H :])
        c_all[t + 1] = f * c_all[t] + i * g
        tanh_c[t] = xp.tanh(c_all[t + 1])
        h_all[t + 1] = o * tanh_c[t]
        acts[t] = xp.concatenate([i, f, g, o], axis=1)
    return acts, h_all, c_all, tanh_c


def lstm_steps_backward(dout, dh_n, dc_n, acts, c_all, tanh_c, w_hh):
    """Backpropagation through time for :func:`lstm_steps` (see ``LSTMSequence``):
    -> dgates (T, N, 4H), dL/dh0, dL/dc0."""
    xp = get_array_module(dout)
    T, N, G = acts.shape
    H = G // 4
    i, f, g, o = (acts[:, :, k * H : (k + 1) * H] for k in range(4))  # each (T, N, H)
    A = xp.empty((T, N, 4, H), dtype=acts.dtype)  # the local factors, all steps at once
    A[:, :, 0] = g * i * (1 - i)
    A[:, :, 1] = c_all[:-1] * f * (1 - f)
    A[:, :, 2] = i * (1 - g * g)
    A[:, :, 3] = tanh_c * o * (1 - o)
    B = o * (1 - tanh_c * tanh_c)
    dgates = xp.empty((T, N, 4, H), dtype=dout.dtype)
    dh, dc = dh_n, dc_n
    for t in range(T - 1, -1, -1):
        d = dgates[t]
        dh = dh + dout[t]
        dc = dc + dh * B[t]
        xp.multiply(dc[:, None, :], A[t, :, :3], out=d[:, :3])  # gates i, f, g
        xp.multiply(dh, A[t, :, 3], out=d[:, 3])  # gate o
        dh = d.reshape(N, G) @ w_hh
        dc = dc * f[t]
    return dgates.reshape(T, N, G), dh, dc


class GRUSequence(Function):
    """GRU over a sequence (gate order r, z, n, as in PyTorch):

        r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    forward(x (T, N, I), h0 (N, H), w_ih (3H, I), w_hh (3H, H), b_ih, b_hh, reverse)
    -> (out (T, N, H), h_n (N, H)).

    Backward through one step, given g_h reaching h_t, with hn = W_hn h_{t-1} + b_hn:

        d_n = g_h (1 - z) (1 - n^2)            (pre-activation of n)
        d_z = g_h (h_{t-1} - n) z (1 - z)
        d_r = d_n * hn * r (1 - r)
        input projection gets [d_r, d_z, d_n], hidden projection [d_r, d_z, d_n * r]
        dL/dh_{t-1} = g_h * z + [d_r, d_z, d_n * r] @ W_hh

    The factors multiplying g_h, (1 - z)(1 - n^2), (h_{t-1} - n) z (1 - z) and
    hn r (1 - r), are computed for all steps before the loop.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
        xp = get_array_module(x)
        gx, x2d = _project_inputs(_in_processing_order(x, reverse), w_ih, (b_ih,))
        T, N, G = gx.shape
        H = G // 3
        acts = xp.empty((T, N, G), dtype=gx.dtype)  # r, z, n after their nonlinearity
        hn_all = xp.empty((T, N, H), dtype=gx.dtype)  # W_hn h_{t-1} + b_hn
        h_all = xp.empty((T + 1, N, H), dtype=gx.dtype)
        h_all[0] = h0
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        for t in range(T):
            h_prev, a = h_all[t], acts[t]
            gh = h_prev @ w_hh_t
            if b_hh is not None:
                gh += b_hh
            xp.add(gx[t, :, : 2 * H], gh[:, : 2 * H], out=a[:, : 2 * H])
            a[:, : 2 * H] = sigmoid(a[:, : 2 * H])
            r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
            hn_all[t] = gh[:, 2 * H :]
            xp.multiply(r, hn_all[t], out=n)
            n += gx[t, :, 2 * H :]
            xp.tanh(n, out=n)
            h = h_all[t + 1]
            xp.subtract(h_prev, n, out=h)
            h *= z
            h += n
        _save_common(ctx, _ARGS_GRU, x2d, h_all, w_ih, w_hh, reverse, acts, hn_all)
        return _in_processing_order(h_all[1:], reverse), h_all[T]

    @staticmethod
    def backward(ctx, dout, dh_n):
        if ctx.create_graph:
            return _through_unrolled(ctx, (dout, dh_n), gru_unrolled)
        xp = get_array_module(dout)
        dout = _in_processing_order(dout, ctx.reverse)
        _, h_all, _, w_hh, acts, hn_all = ctx.saved_tensors
        T, N, G = acts.shape
        H = G // 3
        r, z, n = (acts[:, :, k * H : (k + 1) * H] for k in range(3))  # each (T, N, H)
        A_n = (1 - z) * (1 - n * n)  # the local factors, all steps at once
        A_z = (h_all[:-1] - n) * z * (1 - z)
        A_r = hn_all * r * (1 - r)
        dgh = xp.empty((T, N, G), dtype=dout.dtype)  # [d_r, d_z, d_n * r] per step
        dn = xp.empty((T, N, H), dtype=dout.dtype)
        dh = dh_n
        for t in range(T - 1, -1, -1):
            d = dgh[t]
            dh = dh + dout[t]
            xp.multiply(dh, A_n[t], out=dn[t])
            xp.multiply(dn[t], A_r[t], out=d[:, :H])
            xp.multiply(dh, A_z[t], out=d[:, H : 2 * H])
            xp.multiply(dn[t], r[t], out=d[:, 2 * H :])
            dh = dh * z[t] + d @ w_hh
        dgx = dgh.copy()  # [d_r, d_z, d_n]
        dgx[:, :, 2 * H :] = dn
        dx, dw_ih, dw_hh, db_ih, db_hh = _input_and_weight_grads(ctx, dgx, dgh)
        return dx, dh, dw_ih, dw_hh, db_ih, db_hh, None


# ---------------------------------------------------------------------------
# The same recurrences step by step in differentiable ops (Tensors in, Tensors out), for
# gradients of gradients.


def _steps(x, reverse: bool):
    T = x.shape[0]
    return range(T - 1, -1, -1) if reverse else range(T)


def _affine(v, w, b):
    y = v @ w.T
    return y if b is None else y + b


def _in_time_order(outs, reverse: bool):
    return shape.stack(outs[::-1] if reverse else outs, 0)


def rnn_unrolled(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", reverse=False):
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) -> (out, h_n)."""
    act = activation.tanh if nonlinearity == "tanh" else activation.relu
    h, outs = h0, []
    for t in _steps(x, reverse):
        h = act(_affine(x[t], w_ih, b_ih) + _affine(h, w_hh, b_hh))
        outs.append(h)
    return _in_time_order(outs, reverse), h


def lstm_unrolled(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    """The LSTM step of ``LSTMSequence``'s docstring -> (out, h_n, c_n)."""
    H = h0.shape[-1]
    h, c, outs = h0, c0, []
    for t in _steps(x, reverse):
        pre = _affine(x[t], w_ih, b_ih) + _affine(h, w_hh, b_hh)
        i = activation.sigmoid(pre[:, :H])
        f = activation.sigmoid(pre[:, H : 2 * H])
        g = activation.tanh(pre[:, 2 * H : 3 * H])
        o = activation.sigmoid(pre[:, 3 * H :])
        c = f * c + i * g
        h = o * activation.tanh(c)
        outs.append(h)
    return _in_time_order(outs, reverse), h, c


def gru_unrolled(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
    """The GRU step of ``GRUSequence``'s docstring -> (out, h_n)."""
    H = h0.shape[-1]
    h, outs = h0, []
    for t in _steps(x, reverse):
        gi, gh = _affine(x[t], w_ih, b_ih), _affine(h, w_hh, b_hh)
        r = activation.sigmoid(gi[:, :H] + gh[:, :H])
        z = activation.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        n = activation.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        outs.append(h)
    return _in_time_order(outs, reverse), h


def _through_unrolled(ctx, out_grads, unrolled):
    """The input gradients of a recurrence node as a graph: differentiate ``unrolled``
    (the same recurrence in small ops) at the node's inputs, with ``create_graph``."""
    inputs = ctx.inputs
    wanted = [
        i
        for i, (t, needed) in enumerate(zip(inputs, ctx.needs_input_grad))
        if needed and isinstance(t, Tensor)
    ]
    outs = unrolled(*inputs)
    pairs = [(o, g) for o, g in zip(outs, out_grads) if g is not None and o.requires_grad]
    found = grad(
        [o for o, _ in pairs],
        [inputs[i] for i in wanted],
        [g for _, g in pairs],
        create_graph=True,
        allow_unused=True,
    )
    result = [None] * len(inputs)
    for i, g in zip(wanted, found):
        result[i] = g
    return tuple(result)


_ARGS_RNN = ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh")
_ARGS_LSTM = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
_ARGS_GRU = ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh")


# ---------------------------------------------------------------------------


def rnn_sequence(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
    nonlinearity: str = "tanh",
    reverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """One RNN layer over ``x (T, N, I)`` from ``h0 (N, H)``: ``(out (T, N, H), h_n)``."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}: expected 'tanh' or 'relu'")
    return RNNSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, reverse)


def lstm_sequence(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer over ``x (T, N, I)`` from ``(h0, c0)``: ``(out (T, N, H), h_n, c_n)``."""
    return LSTMSequence.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)


def gru_sequence(
    x: Tensor,
    h0: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """One GRU layer over ``x (T, N, I)`` from ``h0 (N, H)``: ``(out (T, N, H), h_n)``."""
    return GRUSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh, reverse)
