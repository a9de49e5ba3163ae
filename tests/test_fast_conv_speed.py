"""The convolution fast paths that skip im2col, against the reference (fast paths off).

* ``DepthwiseConvolution``: one scaled slab per kernel offset (groups = channels);
* ``ShiftedConvolution``: one product per kernel offset on the phases of the padded
  input, flattened.

Both change the order of the sums only, so they agree with the reference to rounding,
forward and every gradient; a gradient of a gradient still runs the reference.
"""

import numpy as np
import pytest

import minideep as md
from minideep.fast import conv as fast_conv
from minideep.nn import functional as F


@pytest.fixture(autouse=True)
def small_inputs_take_the_shifted_paths(monkeypatch):
    """The shapes here are small, so that float64 checks stay quick: let them take the
    shifted products, which by default start at SHIFTED_MIN_SIZE values."""
    monkeypatch.setattr(fast_conv, "SHIFTED_MIN_SIZE", 0)


def _t(a, requires_grad=False):
    return md.tensor(a, dtype=a.dtype, requires_grad=requires_grad)


def run_both(fn, arrays, upstream_seed=1):
    """Output and input gradients of ``fn`` with the fast paths on, then off."""
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            inputs = [_t(a, requires_grad=True) for a in arrays]
            out = fn(*inputs)
            rng = np.random.default_rng(upstream_seed)
            out.backward(_t(rng.standard_normal(out.shape).astype(out.dtype)))
            results.append([out.numpy()] + [t.grad.numpy() for t in inputs])
    return results


def _close(fast, reference, tol):
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

DEPTHWISE = [  # (input shape, kernel, geometry)
    ((2, 5, 9, 11), (3, 3), dict(padding=1)),
    ((3, 4, 9, 11), (3, 3), dict(stride=2, padding=1)),
    ((2, 4, 7, 8), (3, 2), dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1))),
    ((1, 2, 5, 5), (3, 3), dict(dilation=2)),
    ((2, 3, 6, 7), (2, 3), dict(padding=(1, 2))),
    ((2, 3, 5, 6, 7), (3, 3, 3), dict(padding=1)),
    ((2, 6, 17), (5,), dict(stride=2, padding=2)),
    ((1, 1, 4, 4), (1, 1), dict()),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("shape, kernel, geometry", DEPTHWISE, ids=str)
def test_depthwise_fast_path_equals_the_reference(shape, kernel, geometry, bias):
    rng = np.random.default_rng(0)
    c = shape[1]
    arrays = [rng.standard_normal(shape), rng.standard_normal((c, 1) + kernel)]
    if bias:
        arrays.append(rng.standard_normal(c))
    conv = CONV[len(kernel)]
    fn = lambda *t: conv(*t, groups=c, **geometry)  # noqa: E731
    with md.fast_paths(True):
        assert fast_conv.grouped_convolution(arrays[0], arrays[1], c) is not None
    _close(*run_both(fn, arrays), 1e-12)


def test_depthwise_fast_path_in_float32():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(4, 8, 12, 16), (8, 1, 3, 3)]]
    _close(*run_both(lambda x, w: F.conv2d(x, w, padding=1, groups=8), arrays), 2e-5)


def test_other_groupings_take_the_reference():
    x, w = np.zeros((1, 4, 5, 5)), np.zeros((8, 1, 3, 3))  # a channel multiplier of 2
    assert fast_conv.grouped_convolution(x, w, 4) is None
    assert fast_conv.grouped_convolution(np.zeros((1, 4, 5, 5)), np.zeros((4, 2, 3, 3)), 2) is None
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((8, 1, 3, 3))]
    _close(*run_both(lambda x, w: F.conv2d(x, w, padding=1, groups=4), arrays), 1e-12)


SHIFTED = [  # (input shape, output channels, kernel, geometry)
    ((2, 8, 9, 11), 3, (3, 3), dict(padding=1)),
    ((2, 9, 7, 8), 5, (3, 2), dict(padding=(2, 0), dilation=(2, 1))),
    ((1, 8, 6, 6), 1, (3, 3), dict()),
    ((2, 12, 5, 6), 4, (1, 1), dict()),
    ((2, 8, 5, 6, 7), 4, (3, 3, 3), dict(padding=1)),
    ((3, 10, 17), 2, (5,), dict(padding=2)),
    ((2, 8, 9, 11), 3, (3, 3), dict(stride=2, padding=1)),
    ((2, 8, 10, 12), 4, (4, 4), dict(stride=2, padding=1)),
    ((2, 9, 11, 10), 2, (3, 2), dict(stride=(3, 2), padding=(1, 0), dilation=(1, 2))),
    ((2, 8, 9, 9), 3, (1, 1), dict(stride=2)),
    ((2, 8, 5, 8, 7), 2, (3, 3, 3), dict(stride=(1, 2, 2), padding=1)),
    ((3, 10, 17), 2, (3,), dict(stride=3)),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("shape, c_out, kernel, geometry", SHIFTED, ids=str)
def test_shifted_convolution_equals_the_reference(shape, c_out, kernel, geometry, bias):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(shape), rng.standard_normal((c_out, shape[1]) + kernel)]
    if bias:
        arrays.append(rng.standard_normal(c_out))
    with md.fast_paths(True):
        stride = geometry.get("stride", 1)
        stride = (stride,) * len(kernel) if isinstance(stride, int) else stride
        chosen = fast_conv.convolution(arrays[0], arrays[1], stride)
    assert chosen is fast_conv.ShiftedConvolution
    conv = CONV[len(kernel)]
    _close(*run_both(lambda *t: conv(*t, **geometry), arrays), 1e-12)


def test_the_convolution_path_is_chosen_by_shape():
    pick = fast_conv.convolution
    small = np.zeros((2, 16, 32, 32), np.float32)
    with md.fast_paths(True):
        assert pick(small, np.zeros((32, 16, 3, 3)), (1, 1)) is fast_conv.ShiftedConvolution
        assert pick(small, np.zeros((32, 16, 3, 3)), (2, 2)) is fast_conv.ShiftedConvolution
        few = np.zeros((2, 3, 32, 32), np.float32)  # under 8 input channels
        assert pick(few, np.zeros((16, 3, 3, 3)), (1, 1)) is fast_conv.FoldedBiasConvolution
        big = np.zeros((2, 16, 48, 64), np.float32)  # 32 x 3072 outputs: 384 KB a sample
        assert pick(big, np.zeros((32, 16, 3, 3)), (1, 1)) is fast_conv.FoldedBiasConvolution
        assert pick(big, np.zeros((1, 16, 3, 3)), (1, 1)) is fast_conv.ShiftedConvolution
    with md.fast_paths(False):
        assert pick(small, np.zeros((32, 16, 3, 3)), (1, 1)) is None


def test_small_inputs_take_im2col(monkeypatch):
    monkeypatch.setattr(fast_conv, "SHIFTED_MIN_SIZE", 1 << 15)
    pick = fast_conv.convolution
    with md.fast_paths(True):
        tiny = np.zeros((1, 8, 16, 16), np.float32)  # 2048 values
        assert pick(tiny, np.zeros((8, 8, 3, 3)), (1, 1)) is fast_conv.FoldedBiasConvolution
        batch = np.zeros((16, 8, 16, 16), np.float32)  # 32768 values
        assert pick(batch, np.zeros((8, 8, 3, 3)), (1, 1)) is fast_conv.ShiftedConvolution
        args = ((2, 2), (1, 1), (0, 0), (1, 1))
        small_t = np.zeros((1, 16, 8, 8), np.float32)
        assert fast_conv.transposed_convolution(small_t, np.zeros((16, 8, 4, 4)), *args) is None


def test_shifted_convolution_in_float32_with_an_input_that_wants_no_gradient():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 16, 12, 10)).astype(np.float32)
    w = rng.standard_normal((6, 16, 3, 3)).astype(np.float32)
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            wt = _t(w, requires_grad=True)
            out = F.conv2d(_t(x), wt, padding=1)
            out.sum().backward()
            results.append([out.numpy(), wt.grad.numpy()])
    _close(*results, 2e-4)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: ([rng.standard_normal((2, 8, 5, 6)), rng.standard_normal((3, 8, 3, 3))], {}),
        lambda rng: (
            [rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 1, 3, 3))],
            {"groups": 4},
        ),
    ],
    ids=["shifted", "depthwise"],
)
def test_a_gradient_of_the_gradient_matches_the_reference(make):
    rng = np.random.default_rng(5)
    arrays, kwargs = make(rng)
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            x, w = (_t(a, requires_grad=True) for a in arrays)
            out = F.conv2d(x, w, padding=1, **kwargs)
            (gx,) = md.autograd.grad((out * out).sum(), [x], create_graph=True)
            gx2, gw2 = md.autograd.grad((gx * gx).sum(), [x, w])
            results.append([gx.numpy(), gx2.numpy(), gw2.numpy()])
    _close(*results, 1e-10)


TRANSPOSED = [  # (input shape, output channels, kernel, geometry)
    ((2, 6, 5, 6), 8, (4, 4), dict(stride=2, padding=1)),
    ((2, 5, 5, 6), 9, (3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 4, 5), 8, (3, 2), dict(stride=(3, 2), padding=(1, 0), dilation=(1, 2))),
    ((2, 3, 6, 6), 8, (3, 3), dict(padding=1)),
    ((1, 4, 3, 4, 4), 8, (2, 2, 2), dict(stride=2)),
    ((2, 4, 9), 10, (5,), dict(stride=3, padding=2, output_padding=2)),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("shape, c_out, kernel, geometry", TRANSPOSED, ids=str)
def test_shifted_transposed_convolution_equals_the_reference(shape, c_out, kernel, geometry, bias):
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(shape), rng.standard_normal((shape[1], c_out) + kernel)]
    if bias:
        arrays.append(rng.standard_normal(c_out))
    n = len(kernel)
    full = {k: (v,) * n if isinstance(v, int) else v for k, v in geometry.items()}
    stride, padding = full.get("stride", (1,) * n), full.get("padding", (0,) * n)
    output_padding, dilation = full.get("output_padding", (0,) * n), full.get("dilation", (1,) * n)
    with md.fast_paths(True):
        chosen = fast_conv.transposed_convolution(
            arrays[0], arrays[1], stride, padding, output_padding, dilation
        )
    assert chosen is fast_conv.ShiftedTransposedConvolution
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[n]
    _close(*run_both(lambda *t: conv(*t, **geometry), arrays), 1e-12)


def test_a_transposed_convolution_with_a_large_output_padding_takes_the_reference():
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 8, 3, 3))
    args = ((2, 2), (1, 1), (2, 2), (3, 3))  # output_padding 2 >= stride 2 (dilation 3)
    assert fast_conv.transposed_convolution(x, w, *args) is None
