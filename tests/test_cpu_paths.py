"""The CPU's own paths: the caching allocator (backend.empty), the chunked loops
(for_each_chunk), and the convolution's padded grid and folded bias.

Memory from the pool must never be handed out while any array still uses it: these
tests hold it in the ways an op or a user can (the array, a view of it, a Function's
ctx) and check that convolutions and pools sharing the pool give the right results.
"""

import gc

import numpy as np
import pytest

import minideep as md
from minideep import backend
from minideep.nn import functional as F

BIG = (512, 1024)  # 2 MB of float32: large enough to be pooled


@pytest.fixture(autouse=True)
def empty_pool():
    backend.empty_cache()
    yield
    backend.empty_cache()


def _address(a):
    return a.__array_interface__["data"][0]


def test_the_memory_of_a_dead_array_is_reused_and_a_small_one_is_not_pooled():
    a = backend.empty(BIG, np.float32)
    where = _address(a)
    del a
    assert backend.pool_idle_bytes() == 2**21
    b = backend.empty((1024, 256), np.float64)  # same size in bytes, other shape and dtype
    assert _address(b) == where and b.shape == (1024, 256) and b.dtype == np.float64
    assert backend.pool_idle_bytes() == 0
    del b
    backend.empty((4, 4), np.float32)
    assert backend.pool_idle_bytes() == 2**21  # untouched


def test_a_view_keeps_the_memory_of_its_array():
    a = backend.empty(BIG, np.float32)
    a[:] = 7
    row = a[3]
    del a
    gc.collect()
    assert backend.pool_idle_bytes() == 0
    b = backend.empty(BIG, np.float32)  # must be new memory
    b[:] = -1
    assert (row == 7).all()
    del row
    assert backend.pool_idle_bytes() == 2**21


def test_pooled_arrays_behave_like_numpy_arrays():
    a = backend.zeros(BIG, np.float64)
    assert isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable
    assert a.shape == BIG and (a == 0).all()
    assert backend.empty_like(a).shape == BIG


def test_idle_memory_is_capped(monkeypatch):
    monkeypatch.setattr(backend, "_POOL_MAX_IDLE_BYTES", 3 * 2**20)
    arrays = [backend.empty(BIG, np.float32) for _ in range(2)]
    del arrays
    assert backend.pool_idle_bytes() == 2**21  # the second one did not fit


def test_chunks_cover_the_first_axis_once_in_order(monkeypatch):
    monkeypatch.setattr(backend, "_CHUNK_BYTES", 3 * 8 * 10)  # three rows of 10 float64
    a = np.zeros((8, 10))
    seen = []
    backend.for_each_chunk(seen.append, a)
    assert seen == [slice(0, 3), slice(3, 6), slice(6, 9)]
    assert backend.chunk_rows(a) == 3
    calls = []
    backend.for_each_chunk(calls.append, np.zeros(()))  # 0-d: one call on all of it
    assert calls == [...]


def test_zeros_to_read_are_shared_and_cannot_be_written():
    small = backend.zeros_to_read((2, 3), np.float32)
    big = backend.zeros_to_read((4, 5), np.float32)  # grows the shared block
    assert (small == 0).all() and (big == 0).all() and big.shape == (4, 5)
    assert backend.zeros_to_read((3,), np.float32).base is big.base
    with pytest.raises(ValueError):
        big[0, 0] = 1


@pytest.mark.parametrize("chunk_bytes", [1, 4096, 1 << 40])
def test_results_do_not_depend_on_the_chunks(monkeypatch, chunk_bytes):
    """Pools, ReLU and convolutions loop over chunks of the batch: any chunking gives
    the same values and gradients, to the bit."""
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal((5, 3, 12, 10)), 0).round(1)  # ties in every pool
    w = rng.standard_normal((4, 3, 3, 3))
    u = rng.standard_normal((5, 4, 6, 5))

    def run():
        xt, wt = md.tensor(x, requires_grad=True), md.tensor(w, requires_grad=True)
        y = F.max_pool2d(F.relu(F.conv2d(F.relu(xt), wt, padding=1)), 2)
        (y * md.tensor(u)).sum().backward()
        return y.numpy(), xt.grad.numpy(), wt.grad.numpy()

    reference = run()
    monkeypatch.setattr(backend, "_CHUNK_BYTES", chunk_bytes)
    for a, b in zip(run(), reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("stride", [1, 2])
def test_one_conv_used_twice_before_backward_keeps_both_inputs(stride):
    """Two forwards hold two im2col buffers at once; each backward reads its own."""
    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((8, 8, 32, 32)).astype(np.float32) for _ in range(2))
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    u = rng.standard_normal(F.conv2d(md.tensor(x1), md.tensor(w), stride=stride, padding=1).shape)

    def grads(inputs):
        ts = [md.tensor(a, requires_grad=True) for a in inputs]
        wt = md.tensor(w, requires_grad=True)
        total = sum(
            (F.conv2d(t, wt, stride=stride, padding=1) * md.tensor(u.astype(np.float32))).sum()
            for t in ts
        )
        total.backward()
        return [t.grad.numpy() for t in ts], wt.grad.numpy()

    (g1, g2), gw = grads([x1, x2])
    (h1,), hw1 = grads([x1])
    (h2,), hw2 = grads([x2])
    np.testing.assert_allclose(g1, h1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g2, h2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, hw1 + hw2, rtol=1e-4, atol=1e-3)


def test_grid_convolution_matches_the_im2col_path():
    """Stride 1 with a graph runs on the padded grid; without one, through im2col."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 9, 11, 7)).astype(np.float32)
    w = rng.standard_normal((6, 5, 3, 2, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    kwargs = dict(padding=(1, 0, 2), dilation=(1, 2, 1))
    with md.no_grad():
        plain = F.conv3d(md.tensor(x), md.tensor(w), md.tensor(b), **kwargs).numpy()
    grid = F.conv3d(md.tensor(x, requires_grad=True), md.tensor(w), md.tensor(b), **kwargs)
    np.testing.assert_allclose(grid.numpy(), plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("wants", ["x w b", "b", "w", "x b"])
def test_the_bias_folded_into_the_products_gives_every_gradient(stride, wants):
    """On the CPU a conv's bias is a column of ones in its products: each subset of
    x, w and b wanting a gradient gets the same values as the separate bias path."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in [(2, 3, 7, 6), (4, 3, 3, 2), (4,)]]
    out = F.conv2d(*(_t64(a) for a in arrays), stride=stride, padding=1)
    u = rng.standard_normal(out.shape)
    ts = [_t64(a, requires_grad=name in wants.split()) for a, name in zip(arrays, "xwb")]
    y = F.conv2d(*ts, stride=stride, padding=1)
    (y * _t64(u)).sum().backward()
    x, w, b = arrays
    np.testing.assert_allclose(y.numpy(), out.numpy())
    if "b" in wants:
        np.testing.assert_allclose(ts[2].grad.numpy(), u.sum(axis=(0, 2, 3)), rtol=1e-12)
    if "w" in wants:  # against the same conv without a bias
        tw = _t64(w, requires_grad=True)
        (F.conv2d(_t64(x), tw, stride=stride, padding=1) * _t64(u)).sum().backward()
        np.testing.assert_allclose(ts[1].grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    if "x" in wants:
        tx = _t64(x, requires_grad=True)
        (F.conv2d(tx, _t64(w), stride=stride, padding=1) * _t64(u)).sum().backward()
        np.testing.assert_allclose(ts[0].grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def _t64(a, requires_grad=False):
    return md.tensor(a, dtype=md.float64, requires_grad=requires_grad)
