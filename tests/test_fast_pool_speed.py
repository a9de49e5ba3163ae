"""The pooling fast paths (``fast/pool.py``) against their references (``ops/pool.py``,
``md.fast_paths(False)``).

Max pooling: the same maxima and the gradient on the same element, to the bit, for
every geometry (tiled, with a remainder, overlapping, padded, dilated), with ties, NaN,
infinities, float32 and float64, batch 1, inputs and gradients that are not contiguous,
and arrays large enough to be split into chunks. Global average pooling: the backward
to the bit, the forward to rounding (the sum runs in another order).
"""

import numpy as np
import pytest

import minideep as md
from minideep.fast import memory
from minideep.nn import functional as F


@pytest.fixture(autouse=True)
def empty_pool():
    memory.empty_cache()
    yield
    memory.empty_cache()


def _t(a, requires_grad=False):
    return md.tensor(a, dtype=a.dtype, requires_grad=requires_grad)


def run_both(fn, x, upstream=None, expect_fast=True):
    """fn(x) and the gradient of x for an upstream gradient, fast paths on, then off."""
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            xt = _t(x, requires_grad=True)
            y = fn(xt)
            assert (y._ctx.fast is not None and y._ctx.fast is not False) == (
                enabled and expect_fast
            )
            if upstream is None:
                rng = np.random.default_rng(1)
                upstream = rng.standard_normal(y.shape).astype(x.dtype)
            y.backward(_t(upstream))
            results.append((y.numpy(), xt.grad.numpy()))
    return results


def tied(shape, dtype, rng, kind):
    if kind == "ties":
        return rng.integers(0, 3, shape).astype(dtype)  # many windows with equal maxima
    x = rng.standard_normal(shape).astype(dtype)
    if kind == "relu":
        return np.maximum(x, 0)  # windows of zeros
    if kind == "special":
        flat = x.reshape(-1)
        n = flat.size
        flat[rng.choice(n, max(1, n // 50), replace=False)] = np.nan
        flat[rng.choice(n, max(1, n // 50), replace=False)] = np.inf
        flat[rng.choice(n, max(1, n // 50), replace=False)] = -np.inf
    return x


GEOMETRIES_2D = [
    # (kernel, stride, padding, dilation)
    (2, None, 0, 1),  # tiles the input: the lessons' and the cnn benchmark's pool
    (3, 2, 1, 1),  # overlapping and padded: the ResNet stem
    (3, 1, 1, 1),  # stride 1 along rows: slabs used without a copy
    ((2, 3), (2, 3), 0, 1),
    (3, None, 0, 1),
    (1, None, 0, 1),
    (2, 3, 0, 1),  # disjoint windows with gaps between them
    (3, 2, 1, 2),  # dilated
    ((3, 2), (1, 2), (1, 0), 1),
]


@pytest.mark.parametrize("kind", ["ties", "relu", "special"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", GEOMETRIES_2D, ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 12, 12), (1, 2, 9, 7), (3, 1, 5, 11)], ids=str)
def test_max_pool2d_equals_the_reference_exactly(shape, geometry, dtype, kind):
    kernel, stride, padding, dilation = geometry
    rng = np.random.default_rng(2)
    x = tied(shape, dtype, rng, kind)
    fast, reference = run_both(lambda t: F.max_pool2d(t, kernel, stride, padding, dilation), x)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["relu", "special"])
@pytest.mark.parametrize("geometry", [(2, None, 0), (3, 2, 1), (3, 1, 1)], ids=str)
@pytest.mark.parametrize(
    "shape, dtype",
    [((32, 16, 64, 64), np.float32), ((4, 32, 33, 31), np.float64), ((1, 40, 48, 64), np.float32)],
    ids=str,
)
def test_max_pool2d_of_many_chunks_equals_the_reference_exactly(shape, dtype, geometry, kind):
    """Arrays of several 512 KB chunks (a batch of one is split by planes)."""
    kernel, stride, padding = geometry
    x = tied(shape, dtype, np.random.default_rng(3), kind)
    fast, reference = run_both(lambda t: F.max_pool2d(t, kernel, stride, padding), x)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(2, 3, 40, 40), (8, 16, 40, 40)], ids=str)
def test_a_window_of_more_than_256_offsets_equals_the_reference_exactly(shape):
    """289 offsets: the code no longer fits a uint8."""
    x = tied(shape, np.float32, np.random.default_rng(11), "ties")
    fast, reference = run_both(lambda t: F.max_pool2d(t, 17, 2), x)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


def test_nan_in_a_window_goes_where_the_reference_sends_it():
    """The maximum of a window holding NaN is NaN; the gradient goes to the first
    maximum among the elements before the first NaN (the reference's strict >)."""
    x = np.array([[[[1.0, 3.0], [2.0, np.nan]], [[np.nan, 5.0], [7.0, 1.0]]]], np.float32)
    fast, reference = run_both(lambda t: F.max_pool2d(t, 2), x, np.ones((1, 2, 1, 1), np.float32))
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(fast[0]).all()
    assert fast[1].reshape(2, 4).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("kind", ["ties", "special"])
@pytest.mark.parametrize("geometry", [(2, None, 0), (3, 2, 1), ((1, 2, 2), None, 0)], ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 6, 8, 8), (1, 2, 5, 7, 9), (8, 16, 8, 32, 32)], ids=str)
def test_max_pool3d_equals_the_reference_exactly(shape, geometry, kind):
    kernel, stride, padding = geometry
    x = tied(shape, np.float32, np.random.default_rng(4), kind)
    fast, reference = run_both(lambda t: F.max_pool3d(t, kernel, stride, padding), x)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("geometry", [(2, None, 0), (3, 2, 1)], ids=str)
def test_max_pool_of_views_that_are_not_contiguous(geometry):
    """A transposed input and an upstream gradient that is a strided view."""
    kernel, stride, padding = geometry
    rng = np.random.default_rng(5)
    x = tied((3, 10, 9, 4), np.float64, rng, "ties").transpose(0, 3, 1, 2)  # (3, 4, 10, 9)
    with md.no_grad():
        out_shape = F.max_pool2d(md.Tensor(x), kernel, stride, padding).shape
    upstream = rng.standard_normal(out_shape[:3] + (2 * out_shape[3],))[..., ::2]
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            xt = md.Tensor(x, requires_grad=True)
            y = F.max_pool2d(xt, kernel, stride, padding)
            y.backward(md.Tensor(upstream))
            results.append((y.numpy(), xt.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("geometry", [(2, None, 0), (3, 2, 1)], ids=str)
def test_second_order_through_the_fast_max_pool_equals_the_reference(geometry):
    """A graph of the gradient after the fast forward: the backward takes the
    reference's route, so grad of grad matches the reference."""
    kernel, stride, padding = geometry
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 9, 8))
    v = rng.standard_normal((2, 3, 9, 8))
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            xt = _t(x, requires_grad=True)
            y = F.max_pool2d(xt * xt, kernel, stride, padding)
            (g,) = md.autograd.grad((y * y).sum(), xt, create_graph=True)
            (gg,) = md.autograd.grad((g * _t(v)).sum(), xt)
            results.append((g.numpy(), gg.numpy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_max_pool_of_an_integer_array_takes_the_reference():
    x = np.arange(16).reshape(1, 1, 4, 4)
    assert md.fast.pool.max_pool(x, (2, 2), (2, 2), (0, 0), (1, 1)) is None
    assert F.max_pool2d(md.tensor(x), 2).numpy().ravel().tolist() == [5, 7, 13, 15]


# --------------------------------------------------------- global average pooling


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize(
    "fn, shape",
    [
        (lambda t: F.adaptive_avg_pool2d(t, 1), (16, 32, 24, 32)),
        (lambda t: F.adaptive_avg_pool2d(t, 1), (1, 3, 7, 5)),
        (lambda t: F.adaptive_avg_pool2d(t, (1, 1)), (2, 4, 1, 9)),
        (lambda t: F.adaptive_avg_pool1d(t, 1), (3, 5, 11)),
        (lambda t: F.adaptive_avg_pool3d(t, 1), (2, 3, 4, 5, 6)),
    ],
)
def test_global_average_pool_equals_the_reference(fn, shape, dtype, tol):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    fast, reference = run_both(fn, x)
    np.testing.assert_allclose(fast[0], reference[0], rtol=tol, atol=tol)
    np.testing.assert_array_equal(fast[1], reference[1])  # the same products, to the bit


def test_adaptive_average_pool_to_other_sizes_takes_the_reference():
    x = np.random.default_rng(8).standard_normal((2, 3, 8, 6))
    fast, reference = run_both(lambda t: F.adaptive_avg_pool2d(t, (2, 3)), x, expect_fast=False)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


def test_global_average_pool_of_a_view_that_is_not_contiguous():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 6, 5, 3)).transpose(0, 3, 1, 2)
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            xt = md.Tensor(x, requires_grad=True)
            y = F.adaptive_avg_pool2d(xt, 1)
            y.backward(md.Tensor(np.arange(12.0).reshape(4, 3, 1, 1)))
            results.append((y.numpy(), xt.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_second_order_through_the_global_average_pool_equals_the_reference():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 4, 5))
    v = rng.standard_normal((2, 3, 4, 5))
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            xt = _t(x, requires_grad=True)
            y = F.adaptive_avg_pool2d(xt * xt, 1)
            (g,) = md.autograd.grad((y * y).sum(), xt, create_graph=True)
            (gg,) = md.autograd.grad((g * _t(v)).sum(), xt)
            results.append((g.numpy(), gg.numpy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 0, 4, 4)], ids=str)
def test_empty_batches_and_channels(shape):
    x = np.zeros(shape, np.float32)
    for fn in (lambda t: F.max_pool2d(t, 2), lambda t: F.adaptive_avg_pool2d(t, 1)):
        fast, reference = run_both(fn, x)
        for a, b in zip(fast, reference):
            assert a.shape == b.shape
