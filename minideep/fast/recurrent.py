"""Fast paths of the LSTM recurrence (reference: ``ops/recurrent.py``, ``lstm_steps``).

The reference computes each step's gates as the textbook does: i, f, o = sigmoid(.) and
g = tanh(.) of the step's pre-activations, three sigmoids and a tanh on strided slices.

* :class:`OneSigmoidLSTM` (CPU): all four gates go through *one* in-place sigmoid over
  the contiguous (N, 4H) block of each step, g included, by tanh(u) = 2 sigmoid(2u) - 1:
  the g columns of ``gx`` and of W_hh^T are doubled once before the loop, and
  g = 2 s - 1 afterwards. The backward is the reference's (it only reads the gates).
  The two ways of computing g differ by rounding.
* :class:`CudaLSTM` (GPU): the whole recurrence in one kernel launch forward and one
  backward (``kernels/recurrent.py``).

What each saves: ``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..kernels import recurrent as lstm_kernels
from .switch import enabled


def lstm(x, hidden_size: int):
    """The fast path of the LSTM recurrence for ``x``, or None for the reference."""
    if not enabled() or x.dtype.kind != "f":
        return None
    if isinstance(x, np.ndarray):
        return OneSigmoidLSTM
    if kernels.active(x) and lstm_kernels.supported(x, hidden_size):
        return CudaLSTM
    return None


def sigmoid_(a) -> None:
    """a <- 1 / (1 + exp(-a)) in place.

    Below a = -88, exp(-a) overflows to inf even in float32, and 1 / (1 + inf) = 0 is the
    right answer, so the overflow is simply not reported (capping the argument instead is
    slower: NumPy's minimum against a scalar is not vectorised).
    """
    np.negative(a, out=a)
    with np.errstate(over="ignore"):
        np.exp(a, out=a)
    a += 1.0
    np.reciprocal(a, out=a)


class OneSigmoidLSTM:
    """The LSTM recurrence on the CPU with one sigmoid per step for all four gates."""

    backward = None  # the reference's backward

    @staticmethod
    def forward(gx, h0, c0, w_hh):
        """gx (T, N, 4H), h0, c0 (N, H), w_hh (4H, H) -> acts (T, N, 4H) (i, f, g, o after
        their nonlinearity), h_all, c_all (T+1, N, H), tanh_c (T, N, H). ``gx`` is used as
        scratch (the caller's input projection, not needed afterwards)."""
        T, N, G = gx.shape
        H = G // 4
        acts = np.empty((T, N, G), dtype=gx.dtype)
        h_all = np.empty((T + 1, N, H), dtype=gx.dtype)
        c_all = np.empty((T + 1, N, H), dtype=gx.dtype)
        tanh_c = np.empty((T, N, H), dtype=gx.dtype)
        h_all[0], c_all[0] = h0, c0
        w_hh_t = np.ascontiguousarray(w_hh.T)  # a contiguous operand makes each GEMM faster
        gx[:, :, 2 * H : 3 * H] *= 2  # g's pre-activation doubled: tanh(u) = 2 sigmoid(2u) - 1
        w_hh_t[:, 2 * H : 3 * H] *= 2
        for t in range(T):
            a = acts[t]
            np.matmul(h_all[t], w_hh_t, out=a)
            a += gx[t]
            sigmoid_(a)
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            g *= 2
            g -= 1
            c = c_all[t + 1]
            np.multiply(f, c_all[t], out=c)
            c += i * g
            np.tanh(c, out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=h_all[t + 1])
        return acts, h_all, c_all, tanh_c


class CudaLSTM:
    """The LSTM recurrence as one CUDA kernel each way."""

    @staticmethod
    def forward(gx, h0, c0, w_hh):
        return lstm_kernels.lstm_forward(gx, h0, c0, w_hh)

    @staticmethod
    def backward(dout, dh_n, dc_n, acts, c_all, tanh_c, w_hh):
        return lstm_kernels.lstm_backward(dout, dh_n, dc_n, acts, c_all, tanh_c, w_hh)
