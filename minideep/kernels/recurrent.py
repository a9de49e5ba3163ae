"""LSTM on the GPU: the whole sequence in one kernel launch forward and one backward.

The rows of a batch never mix in the recurrence: row n of h_t depends only on row n of
h_{t-1}. So one thread block takes one row through *all* time steps, with one thread per
hidden unit j and the row's h_{t-1} in shared memory. Per step, thread j computes its
four gate pre-activations (order i, f, g, o)

    z_q = gx[t, n, qH + j] + sum_k h_{t-1}[k] W_hh[qH + j, k]        (q = i, f, g, o)

(``gx`` = x W_ih^T + b_ih + b_hh for all steps, one GEMM outside), then

    i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
    c = f * c_prev + i * g,  h = o * tanh(c)

and the block synchronises before the next step reads the new h. Backward runs the
steps in reverse with dh (reaching h_t) and dc (reaching c_t):

    dc += dh * o * (1 - tanh(c)^2)
    dz  = [dc g i(1-i), dc c_prev f(1-f), dc i (1-g^2), dh tanh(c) o(1-o)]
    dc_prev = dc * f,   dh_prev[j] = sum_q dz[q] W_hh[q, j]   (dz in shared memory)

and the weight gradients are then GEMMs over all steps at once, outside.

Why: a step-by-step loop launches a GEMM and a fused kernel per step forward and three
launches per step backward, and at these sizes the GPU spends its time waiting for
Python to launch them (measured in ``benchmarks/results/gpu_h100.md``). The kernels
need H <= 1024 (one thread per hidden unit in one block); larger layers take the
reference path.
"""

from __future__ import annotations

import functools

import numpy as np

MAX_HIDDEN = 1024  # threads per block

_SOURCE = r"""
extern "C" __global__ void lstm_seq_forward(
    const T* __restrict__ gx,      // (Tn, N, 4H) input projections
    const T* __restrict__ w_hh_t,  // (H, 4H): W_hh transposed, so reads are coalesced
    T* __restrict__ acts,          // (Tn, N, 4H): i, f, g, o after their nonlinearity
    T* __restrict__ h_all,         // (Tn + 1, N, H), h_all[0] = h0 on entry
    T* __restrict__ c_all,         // (Tn + 1, N, H), c_all[0] = c0 on entry
    T* __restrict__ tanh_c,        // (Tn, N, H)
    const int Tn, const int N, const int H)
{
    extern __shared__ unsigned char smem[];
    T* h_prev = reinterpret_cast<T*>(smem);  // H values: this row's h_{t-1}
    const int n = blockIdx.x, j = threadIdx.x, G = 4 * H;
    h_prev[j] = h_all[(long)n * H + j];
    T c = c_all[(long)n * H + j];
    __syncthreads();
    for (int t = 0; t < Tn; ++t) {
        const long row = (long)t * N + n;
        const T* g = gx + row * G;
        T zi = g[j], zf = g[H + j], zg = g[2 * H + j], zo = g[3 * H + j];
        const T* w = w_hh_t + j;
        for (int k = 0; k < H; ++k, w += G) {
            const T hk = h_prev[k];
            zi += hk * w[0];
            zf += hk * w[H];
            zg += hk * w[2 * H];
            zo += hk * w[3 * H];
        }
        const T si = 1 / (1 + exp(-zi)), sf = 1 / (1 + exp(-zf)), so = 1 / (1 + exp(-zo));
        const T tg = tanh(zg);
        c = sf * c + si * tg;
        const T tc = tanh(c), h = so * tc;
        T* a = acts + row * G;
        a[j] = si; a[H + j] = sf; a[2 * H + j] = tg; a[3 * H + j] = so;
        const long next = (row + N) * H + j;  // entry t + 1 of h_all and c_all
        h_all[next] = h;
        c_all[next] = c;
        tanh_c[row * H + j] = tc;
        __syncthreads();  // every thread has read h_prev ...
        h_prev[j] = h;
        __syncthreads();  // ... before it holds h_t
    }
}

extern "C" __global__ void lstm_seq_backward(
    const T* __restrict__ dout,    // (Tn, N, H): gradient reaching each output h_t
    const T* __restrict__ dh_n,    // (N, H)
    const T* __restrict__ dc_n,    // (N, H)
    const T* __restrict__ acts,    // (Tn, N, 4H)
    const T* __restrict__ c_all,   // (Tn + 1, N, H)
    const T* __restrict__ tanh_c,  // (Tn, N, H)
    const T* __restrict__ w_hh,    // (4H, H)
    T* __restrict__ dgates,        // (Tn, N, 4H)
    T* __restrict__ dh0,           // (N, H)
    T* __restrict__ dc0,           // (N, H)
    const int Tn, const int N, const int H)
{
    extern __shared__ unsigned char smem[];
    T* dz = reinterpret_cast<T*>(smem);  // 4H values: this row's dgates at step t
    const int n = blockIdx.x, j = threadIdx.x, G = 4 * H;
    T dh_next = dh_n[(long)n * H + j], dc = dc_n[(long)n * H + j];
    for (int t = Tn - 1; t >= 0; --t) {
        const long row = (long)t * N + n, e = row * H + j;
        const T* a = acts + row * G;
        const T si = a[j], sf = a[H + j], tg = a[2 * H + j], so = a[3 * H + j];
        const T tc = tanh_c[e], c_prev = c_all[e];
        const T dh = dh_next + dout[e];
        dc += dh * so * (1 - tc * tc);
        const T di = dc * tg * si * (1 - si), df = dc * c_prev * sf * (1 - sf);
        const T dg = dc * si * (1 - tg * tg), d_o = dh * tc * so * (1 - so);
        T* d = dgates + row * G;
        d[j] = di; d[H + j] = df; d[2 * H + j] = dg; d[3 * H + j] = d_o;
        dz[j] = di; dz[H + j] = df; dz[2 * H + j] = dg; dz[3 * H + j] = d_o;
        dc *= sf;
        __syncthreads();  // all of dz is written
        T s = 0;
        const T* w = w_hh + j;
        for (int q = 0; q < G; ++q, w += H) s += dz[q] * w[0];
        dh_next = s;
        __syncthreads();  // all of dz is read before the next step overwrites it
    }
    dh0[(long)n * H + j] = dh_next;
    dc0[(long)n * H + j] = dc;
}
"""


@functools.cache
def _module(dtype_name: str):
    import cupy

    ctype = {"float32": "float", "float64": "double"}[dtype_name]
    code = "typedef " + ctype + " T;\n" + _SOURCE
    return cupy.RawModule(code=code, options=("-std=c++14",))


def supported(x, hidden_size: int) -> bool:
    """Whether the sequence kernels take this layer (dtype and hidden size)."""
    return hidden_size <= MAX_HIDDEN and x.dtype in (np.float32, np.float64)


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
    kernel = _module(gx.dtype.name).get_function("lstm_seq_forward")
    args = (cupy.ascontiguousarray(gx), cupy.ascontiguousarray(w_hh.T))
    args += (acts, h_all, c_all, tanh_c, np.int32(T), np.int32(N), np.int32(H))
    kernel((N,), (H,), args, shared_mem=H * gx.dtype.itemsize)
    return acts, h_all, c_all, tanh_c


def lstm_backward(dout, dh_n, dc_n, acts, c_all, tanh_c, w_hh):
    """BPTT through the recurrence; returns dgates (T, N, 4H), dh0 and dc0."""
    import cupy

    T, N, G = acts.shape
    H = G // 4
    dgates = cupy.empty((T, N, G), dtype=acts.dtype)
    dh0 = cupy.empty((N, H), dtype=acts.dtype)
    dc0 = cupy.empty((N, H), dtype=acts.dtype)
    kernel = _module(acts.dtype.name).get_function("lstm_seq_backward")
    contiguous = cupy.ascontiguousarray
    args = (contiguous(dout), contiguous(dh_n), contiguous(dc_n), acts, c_all, tanh_c)
    args += (contiguous(w_hh), dgates, dh0, dc0, np.int32(T), np.int32(N), np.int32(H))
    kernel((N,), (H,), args, shared_mem=G * acts.dtype.itemsize)
    return dgates, dh0, dc0
