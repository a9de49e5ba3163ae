"""Fused LSTM step kernels: the gate nonlinearities and cell update in one launch.

Forward, per element (n, j) of the (N, H) state, with z = gh + gx the (N, 4H) gate
pre-activations of one step (order i, f, g, o):

    i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
    c = f * c_prev + i * g,  h = o * tanh(c)

Backward, with dh (reaching h_t) and dc (reaching c_t):

    dc += dh * o * (1 - tanh(c)^2)
    dz  = [dc g i(1-i), dc c_prev f(1-f), dc i (1-g^2), dh tanh(c) o(1-o)]
    dc_prev = dc * f            (and dh_prev = dz @ W_hh, a GEMM, outside the kernel)
"""

from __future__ import annotations

import functools


@functools.cache
def _forward_kernel():
    import cupy

    return cupy.ElementwiseKernel(
        "raw T gh, raw T gx, T c_prev, int32 H",
        "raw T acts, T c, T tanh_c, T h",
        """
        int n = i / H, j = i % H;
        int b = n * 4 * H + j;
        T zi = gh[b] + gx[b], zf = gh[b + H] + gx[b + H];
        T zg = gh[b + 2 * H] + gx[b + 2 * H], zo = gh[b + 3 * H] + gx[b + 3 * H];
        T si = 1 / (1 + exp(-zi)), sf = 1 / (1 + exp(-zf)), so = 1 / (1 + exp(-zo));
        T tg = tanh(zg);
        T cc = sf * c_prev + si * tg;
        T tc = tanh(cc);
        acts[b] = si; acts[b + H] = sf; acts[b + 2 * H] = tg; acts[b + 3 * H] = so;
        c = cc;
        tanh_c = tc;
        h = so * tc;
        """,
        "minideep_lstm_step_fwd",
    )


@functools.cache
def _backward_kernel():
    import cupy

    return cupy.ElementwiseKernel(
        "T dh_in, T dout, T dc_in, raw T acts, T c_prev, T tanh_c, int32 H",
        "raw T dz, T dc_out",
        """
        int n = i / H, j = i % H;
        int b = n * 4 * H + j;
        T si = acts[b], sf = acts[b + H], tg = acts[b + 2 * H], so = acts[b + 3 * H];
        T dh = dh_in + dout;
        T dc = dc_in + dh * so * (1 - tanh_c * tanh_c);
        dz[b] = dc * tg * si * (1 - si);
        dz[b + H] = dc * c_prev * sf * (1 - sf);
        dz[b + 2 * H] = dc * si * (1 - tg * tg);
        dz[b + 3 * H] = dh * tanh_c * so * (1 - so);
        dc_out = dc * sf;
        """,
        "minideep_lstm_step_bwd",
    )


def lstm_forward(gx, h0, c0, w_hh):
    """Run the recurrence. gx (T, N, 4H) already holds x W_ih^T + b_ih + b_hh.

    Returns acts (T, N, 4H) (i, f, g, o after their nonlinearities), h_all and c_all
    (T+1, N, H) starting with h0 and c0, and tanh_c (T, N, H).
    """
    import cupy

    T, N, G = gx.shape
    H = G // 4
    acts = cupy.empty((T, N, G), dtype=gx.dtype)
    h_all = cupy.empty((T + 1, N, H), dtype=gx.dtype)
    c_all = cupy.empty((T + 1, N, H), dtype=gx.dtype)
    tanh_c = cupy.empty((T, N, H), dtype=gx.dtype)
    h_all[0], c_all[0] = h0, c0
    w_hh_t = cupy.ascontiguousarray(w_hh.T)
    gh = cupy.empty((N, G), dtype=gx.dtype)
    step = _forward_kernel()
    for t in range(T):
        cupy.matmul(h_all[t], w_hh_t, out=gh)
        step(gh, gx[t], c_all[t], H, acts[t], c_all[t + 1], tanh_c[t], h_all[t + 1])
    return acts, h_all, c_all, tanh_c


def lstm_backward(dout, dh_n, dc_n, acts, c_all, tanh_c, w_hh):
    """BPTT through the recurrence; returns dgates (T, N, 4H), dh0 and dc0."""
    import cupy

    T, N, G = acts.shape
    H = G // 4
    dgates = cupy.empty((T, N, G), dtype=dout.dtype)
    dh = cupy.ascontiguousarray(dh_n)
    dc = cupy.ascontiguousarray(dc_n)
    step = _backward_kernel()
    for t in range(T - 1, -1, -1):
        dc_prev = cupy.empty_like(dc)
        step(dh, dout[t], dc, acts[t], c_all[t], tanh_c[t], H, dgates[t], dc_prev)
        dh = dgates[t] @ w_hh
        dc = dc_prev
    return dgates, dh, dc
