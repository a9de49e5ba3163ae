"""Scratch buffers (backend.scratch) and the convolutions that reuse them.

A reused buffer must never be handed out while something still uses it: these tests
check the two ways a buffer is held (an owner object, or an explicit release) and that
convolutions sharing the pool still give the right gradients.
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
    backend.clear_scratch()
    yield
    backend.clear_scratch()


def test_a_released_buffer_is_reused_and_a_small_one_is_not_pooled():
    a = backend.scratch(BIG, np.float32)
    backend.release(a)
    assert backend.scratch(BIG, np.float32) is a
    small = backend.scratch((4, 4), np.float32)
    backend.release(small)
    assert backend.scratch((4, 4), np.float32) is not small


def test_a_buffer_with_an_owner_is_reused_only_after_the_owner_is_gone():
    class Owner:
        pass

    owner = Owner()
    a = backend.scratch(BIG, np.float32, owner)
    b = backend.scratch(BIG, np.float32)
    assert b is not a  # a still belongs to owner
    del owner
    gc.collect()
    assert backend.scratch(BIG, np.float32) is a


def test_idle_buffers_are_capped(monkeypatch):
    monkeypatch.setattr(backend, "_SCRATCH_MAX_IDLE_BYTES", 3 * 2**20)
    buffers = [backend.scratch(BIG, np.float32) for _ in range(2)]
    for buf in buffers:
        backend.release(buf)
    assert backend._scratch_idle_bytes == 2**21  # the second one did not fit


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
