"""The CPU fast paths of the normalisation ops (``minideep/fast/norm.py``) against their
references (``md.fast_paths(False)``): forward, every gradient and the running
statistics, in float32 and float64, for odd shapes, batch 1 and non-contiguous inputs;
and a second-order gradient, which the reference backward computes on the graph.

The sums run in another order than the reference's, so the results agree to rounding:
rtol 1e-10 in float64, 1e-4 in float32 (the inputs are O(1), the sums over at most a
few thousand values).
"""

import numpy as np
import pytest

import minideep as md
from minideep.nn import functional as F


@pytest.fixture(autouse=True)
def fast_at_every_size(monkeypatch):
    """The fast paths of BatchNorm and GroupNorm start at 8192 values (below, the
    reference is faster); the odd small shapes here go through them all the same."""
    monkeypatch.setattr(md.fast.norm, "_MIN_SIZE", 0)


TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _t(a, requires_grad=False):
    return md.tensor(a, dtype=a.dtype, requires_grad=requires_grad)


def _both(fn, arrays, upstream, check_fast=None):
    """fn's output, the gradients of its float inputs and whatever it returns beside,
    with the fast paths on, then off."""
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            inputs = [
                _t(np.array(a), requires_grad=True) if a is not None else None for a in arrays
            ]
            out, extra = fn(*inputs)
            if check_fast is not None:
                assert (out._ctx.fast is not None) == enabled
            out.backward(_t(upstream))
            grads = [t.grad.numpy() for t in inputs if t is not None]
            results.append([out.numpy(), *grads, *extra])
    return results


def _assert_close(results, dtype):
    fast, ref = results
    assert len(fast) == len(ref)
    for a, b in zip(fast, ref):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **TOL[dtype])


SHAPES = [
    (16, 5, 7, 9), (1, 3, 4, 70), (7, 3), (2, 4, 5), (3, 2, 3, 4, 5), (300, 33), (3, 2, 24, 32)
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", ["both", "weight only", "bias only", "none"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_equals_the_reference(shape, dtype, affine, training):
    if shape[0] == 1 and len(shape) == 2:
        pytest.skip("one value per channel")
    rng = np.random.default_rng(3)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine in ("both", "weight only") else None
    b = rng.standard_normal(c).astype(dtype) if affine in ("both", "bias only") else None
    mean0, var0 = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    upstream = rng.standard_normal(shape).astype(dtype)

    def fn(xt, wt=None, bt=None):
        rm, rv = _t(mean0.copy()), _t(var0.copy())
        out = F.batch_norm(xt, rm, rv, wt, bt, training=training, momentum=0.3)
        return out, [rm.numpy(), rv.numpy()]

    _assert_close(_both(fn, [x, w, b], upstream, check_fast=True), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm", ["batch", "group"])
def test_norm_of_a_non_contiguous_input_equals_the_reference(dtype, norm):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 9, 8, 4)).astype(dtype)
    w, b = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    upstream = rng.standard_normal((6, 4, 8, 9)).astype(dtype)

    def fn(xt, wt, bt):
        view = xt.permute(0, 3, 2, 1)  # (6, 4, 8, 9), not contiguous
        assert not view.data.flags.c_contiguous
        if norm == "batch":
            return F.batch_norm(view, None, None, wt, bt, training=True), []
        return F.group_norm(view, 2, wt, bt), []

    _assert_close(_both(fn, [x, w, b], upstream, check_fast=True), dtype)


@pytest.mark.parametrize("norm", ["batch train", "batch eval", "group", "group no affine"])
def test_norm_without_gradients_equals_the_reference(norm):
    """Nothing is saved for a backward: the output is made in place."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 6, 5, 7)).astype(np.float32)
    w, b = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    outs = []
    for enabled in (True, False):
        with md.fast_paths(enabled), md.no_grad():
            rm, rv = _t(np.zeros(6, np.float32)), _t(np.ones(6, np.float32))
            if norm.startswith("batch"):
                out = F.batch_norm(_t(x), rm, rv, _t(w), _t(b), training=norm == "batch train")
            elif norm == "group":
                out = F.group_norm(_t(x), 3, _t(w), _t(b))
            else:
                out = F.group_norm(_t(x), 2)
            outs.append([out.numpy(), rm.numpy(), rv.numpy()])
    _assert_close(outs, np.float32)


def test_small_inputs_take_the_reference(monkeypatch):
    monkeypatch.setattr(md.fast.norm, "_MIN_SIZE", 8192)
    small = md.randn(2, 4, 3, 3, requires_grad=True)
    big = md.randn(2, 4, 32, 32, requires_grad=True)
    for x in (small, big):
        for out in (F.batch_norm(x, None, None, training=True), F.group_norm(x, 2)):
            assert (out._ctx.fast is not None) == (x is big)


def test_batch_norm_module_keeps_pytorchs_running_statistics_with_fast_paths():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 3, 5, 6)).astype(np.float32) * 3 + 1
    stats = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            md.manual_seed(0)
            bn = md.nn.BatchNorm2d(3, momentum=None)
            for _ in range(3):
                bn(md.tensor(x))
            stats.append([bn.running_mean.numpy(), bn.running_var.numpy()])
    for a, b in zip(*stats):
        np.testing.assert_allclose(a, b, rtol=1e-5)


GROUP_SHAPES = [
    ((16, 16, 6, 8), 4),
    ((1, 6, 70), 3),
    ((5, 4), 2),
    ((3, 6, 2, 3, 5), 6),
    ((2, 4, 9000), 1),
    ((3, 4, 24, 32), 2),  # rows of 768: the per-(sample, channel) steps row by row
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, groups", GROUP_SHAPES)
@pytest.mark.parametrize("affine", ["both", "weight only", "bias only", "none"])
def test_group_norm_equals_the_reference(shape, groups, dtype, affine):
    rng = np.random.default_rng(6)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine in ("both", "weight only") else None
    b = rng.standard_normal(c).astype(dtype) if affine in ("both", "bias only") else None
    upstream = rng.standard_normal(shape).astype(dtype)

    def fn(xt, wt=None, bt=None):
        return F.group_norm(xt, groups, wt, bt), []

    arrays = [x, w, b]
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            ts = [_t(a, requires_grad=True) if a is not None else None for a in arrays]
            out, _ = fn(*ts)
            assert (out._ctx.fast is not None) == enabled
            out.backward(_t(upstream))
            results.append([out.numpy()] + [t.grad.numpy() for t in ts if t is not None])
    _assert_close(results, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(16, 64, 128), (1, 3, 7), (5, 130), (4, 3, 256)])
def test_layer_norm_equals_the_reference(shape, dtype):
    rng = np.random.default_rng(7)
    n = shape[-1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    upstream = rng.standard_normal(shape).astype(dtype)

    def fn(xt, wt, bt):
        return F.layer_norm(xt, (n,), wt, bt), []

    _assert_close(_both(fn, [x, w, b], upstream, check_fast=True), dtype)


def _second_order(fn, arrays):
    """d/d(inputs) of sum(grad(fn)^2), with the fast paths on, then off."""
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            ts = [_t(a, requires_grad=True) for a in arrays]
            out = fn(*ts)
            u = _t(np.random.default_rng(9).standard_normal(out.shape))
            grads = md.autograd.grad((out * u).sum(), ts, create_graph=True)
            total = sum((g * g).sum() for g in grads)
            second = md.autograd.grad(total, ts, allow_unused=True)  # bias: no second order
            results.append([g.numpy() for g in second if g is not None])
    return results


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_second_order_gradient_equals_the_reference(training):
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((4, 3, 5, 6)), rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)

    def fn(xt, wt, bt):
        return F.batch_norm(xt, _t(rm.copy()), _t(rv.copy()), wt, bt, training=training)

    _assert_close(_second_order(fn, [x, w, b]), np.float64)


def test_group_norm_second_order_gradient_equals_the_reference():
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((3, 6, 4, 5)), rng.standard_normal(6), rng.standard_normal(6)
    _assert_close(
        _second_order(lambda xt, wt, bt: F.group_norm(xt, 3, wt, bt), [x, w, b]), np.float64
    )


def test_group_norm_gradgradcheck():
    rng = np.random.default_rng(10)
    x = _t(rng.standard_normal((2, 4, 3)), requires_grad=True)
    w, b = (_t(rng.standard_normal(4), requires_grad=True) for _ in range(2))
    assert md.gradgradcheck(lambda *a: F.group_norm(*a[:1], 2, *a[1:]), (x, w, b))


def test_dots_write_into_a_strided_output():
    """``_dots`` returns its sums in ``out`` even where ``out`` is not contiguous (a view
    that reshape would copy)."""
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((2, 3, 50)), rng.standard_normal((2, 3, 50))
    out = np.zeros((3, 2)).T  # (2, 3), Fortran order
    md.fast.norm._dots(a, b, out)
    np.testing.assert_allclose(out, (a * b).sum(axis=-1), rtol=1e-12)


@pytest.mark.parametrize("norm", ["batch", "group"])
@pytest.mark.parametrize("wanted", ["x", "weight", "bias", "weight and bias", "x and bias"])
def test_norm_with_some_gradients_wanted_equals_the_reference(norm, wanted):
    """Only some inputs want a gradient (a frozen weight, an input that is data): the
    fast backward gives those, equal to the reference's, and leaves the others None."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 4, 24, 32))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    upstream = rng.standard_normal(x.shape)
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            named = ((x, "x"), (w, "weight"), (b, "bias"))
            ts = [_t(a, requires_grad=name in wanted) for a, name in named]
            if norm == "batch":
                out = F.batch_norm(ts[0], None, None, ts[1], ts[2], training=True)
            else:
                out = F.group_norm(ts[0], 2, ts[1], ts[2])
            assert (out._ctx.fast is not None) == enabled
            out.backward(_t(upstream))
            results.append([t.grad.numpy() if t.grad is not None else None for t in ts])
    for fast, ref in zip(*results):
        assert (fast is None) == (ref is None)
        if fast is not None:
            np.testing.assert_allclose(fast, ref, **TOL[np.float64])
