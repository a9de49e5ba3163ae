"""The activations' CPU fast paths (``minideep/fast/activation.py``) against their
references (``with md.fast_paths(False)``): to the bit where the arithmetic is the same
(ReLU, Tanh, LeakyReLU, ELU, Softplus, float64 GELU), to a stated bound where it is not
(Sigmoid's and SiLU's 1 / (1 + exp(-x)), the tanh GELU regrouped, the float32 GELU's
rational Phi)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import minideep as md
import minideep.nn.functional as F
from minideep.fast import activation as fast_activation
from minideep.ops.activation import erf_array

EPS32 = 2.0**-24  # the spacing of float32 numbers in [0.5, 1)

SHAPES = [(7,), (1, 5), (1, 3, 5, 7), (3, 70001), (2, 16, 48, 64)]  # > PIECE, ragged


@pytest.fixture(params=["pieces as shipped", "small pieces"])
def pieces(request, monkeypatch):
    """Run a test with the shipped sizes, and again with every array on the fast path in
    pieces of 1000 elements (so small shapes, too, take it, over several ragged pieces)."""
    if request.param == "small pieces":
        monkeypatch.setattr(fast_activation, "PIECE", 1000)
        monkeypatch.setattr(fast_activation, "MIN_SIZE", 0)
    return request.param


def _run(f, a, g, on, dtype):
    with md.fast_paths(on):
        x = md.tensor(a, requires_grad=True, dtype=dtype)
        y = f(x)
        y.backward(g)
        return y.numpy(), x.grad.numpy()


def _both(f, a, g):
    dtype = md.float64 if a.dtype == np.float64 else md.float32
    return _run(f, a, g, True, dtype), _run(f, a, g, False, dtype)


EXACT = {
    "relu": F.relu,
    "tanh": F.tanh,
    "leaky_relu": F.leaky_relu,
    "leaky_relu 0.2": lambda x: F.leaky_relu(x, 0.2),
    "leaky_relu 0": lambda x: F.leaky_relu(x, 0.0),
    "leaky_relu 3 (reference)": lambda x: F.leaky_relu(x, 3.0),
    "elu": F.elu,
    "elu 0.5": lambda x: F.elu(x, 0.5),
    "elu 2 (reference)": lambda x: F.elu(x, 2.0),
    "softplus": F.softplus,
    "softplus beta 2 threshold 5": lambda x: F.softplus(x, 2.0, 5.0),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(EXACT))
def test_exact_activations_equal_the_reference_to_the_bit(name, shape, dtype, pieces):
    rng = np.random.default_rng(0)
    a = (4 * rng.standard_normal(shape)).astype(dtype)
    a.reshape(-1)[:4] = [0.0, -0.0, 40.0, -40.0][: a.size]
    g = rng.standard_normal(shape).astype(dtype)
    (y1, d1), (y0, d0) = _both(EXACT[name], a, g)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(d1, d0)
    assert np.array_equal(np.signbit(y1), np.signbit(y0))  # signed zeros too


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES + [(400_001,)])
@pytest.mark.parametrize("name", ["sigmoid", "silu"])
def test_sigmoid_and_silu_equal_the_reference_to_rounding(name, shape, dtype, pieces):
    """The fast forward's sigmoid is 1 / (1 + exp(-x)): within 4 ulp of the reference's
    where the sigmoid is a normal number; below (x < -87 in float32) it is 0 where the
    reference gives a subnormal, so the error is at most the smallest normal (times |x|
    for SiLU). The backwards are the reference's arithmetic on the saved values."""
    rng = np.random.default_rng(7)
    a = (4 * rng.standard_normal(shape)).astype(dtype)
    if a.size > 200_000:
        a.reshape(-1)[:200_001] = np.linspace(-800, 800, 200_001)
    g = rng.standard_normal(shape).astype(dtype)
    f = {"sigmoid": F.sigmoid, "silu": F.silu}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning comes out
        (y1, d1), (y0, d0) = _both(f, a, g)
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    assert np.all(np.abs(y1 - y0) <= 4 * eps * np.abs(y0) + tiny * (1 + np.abs(a)))
    scale = np.abs(g) * (1 + np.abs(a))
    assert np.all(np.abs(d1 - d0) <= 4 * eps * scale + tiny * scale)


@pytest.mark.parametrize("shape", SHAPES)
def test_float64_gelu_equals_the_reference_to_the_bit(shape, pieces):
    rng = np.random.default_rng(1)
    a = 3 * rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    (y1, d1), (y0, d0) = _both(F.gelu, a, g)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(d1, d0)


@pytest.mark.parametrize("name", list(EXACT) + ["sigmoid", "silu", "gelu", "gelu tanh"])
def test_non_contiguous_inputs_and_gradients(name, pieces):
    f = {"gelu": F.gelu, "gelu tanh": lambda x: F.gelu(x, approximate="tanh")}.get(name)
    f = f or {**EXACT, "sigmoid": F.sigmoid, "silu": F.silu}[name]
    rng = np.random.default_rng(2)
    a = rng.standard_normal((6, 5, 40)).astype(np.float32).transpose(2, 0, 1)[::2]
    g = rng.standard_normal((5, 6, 40)).astype(np.float32).transpose(2, 1, 0)[::2]
    (y1, d1), (y0, d0) = _both(f, a, g)
    np.testing.assert_allclose(y1, y0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d1, d0, rtol=1e-6, atol=1e-6)


# -------------------------------------------------------------- float32 Phi and GELU


def _phi64(x):
    return np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in np.asarray(x, np.float64)])


def test_float32_normal_cdf_is_within_4_ulp_of_float64_on_a_dense_grid():
    x = np.concatenate(
        [
            np.linspace(-9, 9, 600_001),
            np.random.default_rng(3).standard_normal(200_000) * 2.5,
            [0.0, -0.0, 5.3, -5.3, 5.42, -5.42, 1e-30, -1e-30, 100, -100],
        ]
    ).astype(np.float32)
    phi = fast_activation.normal_cdf_float32(x)
    assert phi.dtype == np.float32
    err = np.abs(phi.astype(np.float64) - _phi64(x))
    assert err.max() <= 4 * EPS32, err.max() / EPS32
    assert phi.min() >= 0 and phi.max() <= 1
    at_infinity = fast_activation.normal_cdf_float32(np.float32([np.inf, -np.inf]))
    assert np.all(np.abs(at_infinity - [1, 0]) <= 4 * EPS32)


def test_float32_gelu_is_within_its_bound_of_float64(pieces):
    """out = x Phi(x): |error| <= |x| 4 ulp (Phi) + the product's rounding (1 ulp of |x|);
    dx = g (Phi + x phi): |error| <= |g| (4 ulp + |x| phi rounding + sums): 8 ulp (1 + |x|)."""
    rng = np.random.default_rng(4)
    a = np.concatenate([np.linspace(-8, 8, 100_001), 2 * rng.standard_normal(100_000)])
    a = a.astype(np.float32)
    g = rng.standard_normal(a.shape).astype(np.float32)
    y, d = _run(F.gelu, a, g, True, md.float32)
    x64, g64 = a.astype(np.float64), g.astype(np.float64)
    phi = _phi64(x64)
    pdf = np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    assert np.all(np.abs(y - x64 * phi) <= 5 * EPS32 * np.abs(x64) + 1e-45)
    bound = 8 * EPS32 * np.abs(g64) * (1 + np.abs(x64))
    assert np.all(np.abs(d - g64 * (phi + x64 * pdf)) <= bound)
    # and against the float32 reference (itself a float32 computation of the series)
    y0, d0 = _run(F.gelu, a, g, False, md.float32)
    assert np.all(np.abs(y - y0) <= 8 * EPS32 * (np.abs(a) + np.abs(y0)))
    assert np.all(np.abs(d - d0) <= 12 * EPS32 * np.abs(g) * (1 + np.abs(a)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_tanh_gelu_equals_the_reference_to_rounding(shape, dtype, pieces):
    rng = np.random.default_rng(5)
    a = (3 * rng.standard_normal(shape)).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    (y1, d1), (y0, d0) = _both(lambda x: F.gelu(x, approximate="tanh"), a, g)
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(y1 - y0) <= 4 * eps * (np.abs(y0) + np.abs(a)))
    assert np.all(np.abs(d1 - d0) <= 8 * eps * np.abs(g) * (1 + np.abs(a)))


def test_float32_gelu_on_a_single_element_and_an_empty_array():
    for shape in [(1,), (0,), (1, 0, 3)]:
        a = np.full(shape, 0.7, np.float32)
        (y1, d1), (y0, d0) = _both(F.gelu, a, np.ones(shape, np.float32))
        assert y1.shape == shape and d1.shape == shape
        np.testing.assert_allclose(y1, y0, rtol=4e-7)
        np.testing.assert_allclose(d1, d0, rtol=4e-7)


# ----------------------------------------------------------- gradients of gradients


@pytest.mark.parametrize(
    "name",
    ["sigmoid", "silu", "tanh", "elu", "softplus", "gelu", "gelu tanh", "gelu float32"],
)
def test_second_order_gradients_match_the_reference(name, pieces):
    f = {
        "gelu": F.gelu,
        "gelu float32": F.gelu,
        "gelu tanh": lambda x: F.gelu(x, approximate="tanh"),
        "sigmoid": F.sigmoid,
        "silu": F.silu,
    }.get(name, EXACT.get(name))
    dtype = md.float32 if name == "gelu float32" else md.float64
    rng = np.random.default_rng(6)
    a = rng.standard_normal((3, 70001 // 3 + 5))
    v = rng.standard_normal(a.shape)
    results = []
    for on in [True, False]:
        with md.fast_paths(on):
            x = md.tensor(a, requires_grad=True, dtype=dtype)
            (gx,) = md.autograd.grad(f(x).sum(), x, create_graph=True)
            (hx,) = md.autograd.grad((gx * md.tensor(v, dtype=dtype)).sum(), x)
            results.append((gx.numpy(), hx.numpy()))
    (g1, h1), (g0, h0) = results
    tol = 1e-5 if dtype == md.float32 else 1e-13
    np.testing.assert_allclose(g1, g0, rtol=tol, atol=tol)
    np.testing.assert_allclose(h1, h0, rtol=tol, atol=tol)


# ------------------------------------------------------------- the reference erf


def test_banded_series_erf_matches_math_erf_at_the_band_edges():
    edges = [0.5, 1.0, 1.5, 2.0, 2.5]
    x = np.array([e + d for e in edges for d in (-1e-12, 0, 1e-12)] + [0.0, 6.0, 30.0])
    x = np.concatenate([x, -x, np.linspace(-3, 3, 60_001)])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf_array(x), expected, rtol=2e-15, atol=1e-15)
    assert np.isnan(erf_array(np.array([np.nan, 1.0])))[0]


@pytest.mark.parametrize("name", ["sigmoid", "silu"])
def test_sigmoid_and_silu_far_below_zero_are_pytorchs(name):
    """Below x = -88.7 (float32) exp(-x) overflows and the fast path gives 0, as PyTorch's
    CPU kernels do (the reference gives exp(x) there, a subnormal down to x = -103)."""
    torch = pytest.importorskip("torch")
    a = np.linspace(-110, 10, 3 * fast_activation.MIN_SIZE).astype(np.float32)
    f = {"sigmoid": F.sigmoid, "silu": F.silu}[name]
    t = {"sigmoid": torch.sigmoid, "silu": torch.nn.functional.silu}[name]
    with md.fast_paths(True):
        ours = f(md.tensor(a)).numpy()
    theirs = t(torch.from_numpy(a)).numpy()
    np.testing.assert_array_equal(ours == 0, theirs == 0)
    f32 = np.finfo(np.float32)
    np.testing.assert_allclose(ours, theirs, rtol=4 * f32.eps, atol=f32.smallest_subnormal)
