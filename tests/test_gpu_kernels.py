"""The custom CuPy kernels agree with the generic array code they replace.

Marked ``gpu``; skipped without CUDA. Each test runs the same op with the kernels on
and off (``md.fast_paths``) on the GPU, and compares values and gradients.
"""

import numpy as np
import pytest

import minideep as md
import minideep.kernels
import minideep.nn.functional as F

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not md.cuda.is_available(), reason="needs CUDA and CuPy"),
]


@pytest.fixture(autouse=True)
def restore_fast_paths():
    with md.fast_paths(md.fast.enabled()):  # the tests below switch it; put it back after
        yield


def run_both(fn, *arrays, monkeypatch):
    """Values and input gradients of ``fn`` on the GPU with the kernels on, then off."""
    results = []
    for enabled in (True, False):
        md.fast_paths(enabled)
        inputs = [md.tensor(a, dtype=a.dtype, device="cuda", requires_grad=True) for a in arrays]
        out = fn(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        upstream = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
        out.backward(md.tensor(upstream, dtype=out.dtype, device="cuda"))
        results.append([out.numpy()] + [t.grad.numpy() for t in inputs])
    return results


def assert_same(results, rtol=1e-10):
    for fast, generic in zip(*results):
        np.testing.assert_allclose(fast, generic, rtol=rtol, atol=rtol)


GEOMETRIES = [
    dict(stride=1, padding=1, dilation=1),
    dict(stride=2, padding=0, dilation=1),
    dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
    dict(stride=3, padding=2, dilation=2),
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_conv2d_kernels_match_the_generic_path(geometry, monkeypatch):
    rng = np.random.default_rng(0)
    x, w, b = (
        rng.standard_normal((2, 3, 11, 9)),
        rng.standard_normal((4, 3, 3, 2)),
        rng.standard_normal(4),
    )
    results = run_both(
        lambda x, w, b: F.conv2d(x, w, b, **geometry), x, w, b, monkeypatch=monkeypatch
    )
    assert_same(results)


def test_conv_transpose2d_kernels_match_the_generic_path(monkeypatch):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((3, 4, 3, 3))
    fn = lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)  # noqa: E731
    assert_same(run_both(fn, x, w, monkeypatch=monkeypatch))


@pytest.mark.parametrize(
    "kernel, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))]
)
def test_max_pool2d_kernels_match_the_generic_path(kernel, stride, padding, monkeypatch):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
    fn = lambda x: F.max_pool2d(x, kernel, stride, padding)  # noqa: E731
    assert_same(run_both(fn, x, monkeypatch=monkeypatch))


def test_max_pool2d_kernel_ties_go_to_the_first_maximum(monkeypatch):
    x = np.zeros((1, 1, 4, 4))
    assert_same(run_both(lambda x: F.max_pool2d(x, 2), x, monkeypatch=monkeypatch))


@pytest.mark.parametrize(
    "layers, batch_first, bidirectional, steps, hidden",
    [(1, False, False, 5, 6), (2, True, False, 5, 6), (1, True, True, 21, 130)],
)
def test_lstm_kernels_match_the_generic_path(
    layers, batch_first, bidirectional, steps, hidden, monkeypatch
):
    results = []
    x_np = np.random.default_rng(0).standard_normal((steps, 3, 7))
    for enabled in (True, False):
        md.fast_paths(enabled)
        md.manual_seed(0)
        lstm = md.nn.LSTM(
            7, hidden, num_layers=layers, batch_first=batch_first, bidirectional=bidirectional
        )
        lstm = lstm.double().to("cuda")
        x = md.tensor(x_np, dtype=md.float64, device="cuda", requires_grad=True)
        out, (h, c) = lstm(x)
        (out.sum() * 2 + (h * c).sum()).backward()
        results.append([out.numpy(), h.numpy(), c.numpy(), x.grad.numpy()]
                       + [p.grad.numpy() for p in lstm.parameters()])  # fmt: skip
    assert_same(results)


def test_float32_conv_on_the_gpu_matches_numpy_within_1e4():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    cpu = F.conv2d(md.tensor(x), md.tensor(w), padding=1).numpy()
    gpu = F.conv2d(md.tensor(x, device="cuda"), md.tensor(w, device="cuda"), padding=1).numpy()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)


def test_lstm_sequence_kernel_in_float32_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 16, 32)).astype(np.float32)
    grads = []
    for device in ("cpu", "cuda"):
        md.manual_seed(0)
        lstm = md.nn.LSTM(32, 64, batch_first=True).to(device)
        xt = md.tensor(x, device=device, requires_grad=True)
        out, (h, c) = lstm(xt)
        (out * out).sum().backward()
        grads.append([out.numpy(), c.numpy(), xt.grad.numpy(), lstm.weight_hh_l0.grad.numpy()])
    for gpu, cpu in zip(*grads):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)


def test_lstm_wider_than_a_thread_block_takes_the_generic_path():
    lstm = md.nn.LSTM(3, minideep.kernels.recurrent.MAX_HIDDEN + 1).to("cuda")
    x = md.tensor(np.ones((2, 1, 3), np.float32), device="cuda", requires_grad=True)
    out, _ = lstm(x)
    out.sum().backward()
    assert out.shape == (2, 1, minideep.kernels.recurrent.MAX_HIDDEN + 1)
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()
