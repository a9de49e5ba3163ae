"""The LSTM's fast backward (in place into buffers allocated once) against the
reference's ``lstm_steps_backward``: the same arithmetic, so equal to the bit."""

import numpy as np
import pytest

import minideep as md
from minideep.fast.recurrent import OneSigmoidLSTM
from minideep.ops.recurrent import lstm_steps, lstm_steps_backward


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, N, H", [(1, 1, 1), (5, 3, 4), (16, 32, 128)])
def test_fast_lstm_backward_equals_the_reference_to_the_bit(dtype, T, N, H):
    rng = np.random.default_rng(0)
    gx = rng.standard_normal((T, N, 4 * H)).astype(dtype)
    h0, c0 = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    w_hh = (0.3 * rng.standard_normal((4 * H, H))).astype(dtype)
    acts, _, c_all, tanh_c = lstm_steps(gx, h0, c0, w_hh)
    dout = rng.standard_normal((T, N, H)).astype(dtype)
    dh_n, dc_n = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    args = (dout, dh_n, dc_n, acts, c_all, tanh_c, w_hh)
    before = [a.copy() for a in args]
    reference = lstm_steps_backward(*args)
    fast = OneSigmoidLSTM.backward(*args)
    for a, b in zip(fast, reference):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    for a, b in zip(args, before):  # the inputs are left as they were
        np.testing.assert_array_equal(a, b)


def test_an_lstm_layer_with_the_fast_backward_gives_the_reference_gradients():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 7, 5))
    results = []
    for enabled in (True, False):
        md.manual_seed(0)
        lstm = md.nn.LSTM(5, 6, num_layers=2, batch_first=True, bidirectional=True)
        lstm.to(md.float64)
        with md.fast_paths(enabled):
            xt = md.tensor(x, dtype=md.float64, requires_grad=True)
            out, (h, c) = lstm(xt)
            (out.sum() + (h * h).sum() + c.sum()).backward()
        results.append([out.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in lstm.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
