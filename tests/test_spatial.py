"""The spatial vocabulary against PyTorch: 1-d, grouped and transposed convolutions,
adaptive pooling, interpolate, grid_sample, affine_grid, pad, pixel shuffles, and their
modules (state_dict keys and shapes, outputs with copied weights, repr, errors).

Values and gradients (a random upstream gradient) are compared in float64."""

import numpy as np
import pytest

import minideep as md
from minideep import nn
from minideep.nn import functional as F
from minideep.ops.conv import Convolution, GroupedConvolution


def _run_both(ours, theirs, arrays, grad=None, seed=1):
    """Output and input gradients of ``ours`` (minideep) and ``theirs`` (PyTorch)."""
    import torch

    grad = [True] * len(arrays) if grad is None else grad
    mine = [md.tensor(a, dtype=md.float64, requires_grad=g) for a, g in zip(arrays, grad)]
    ref = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    y, yt = ours(*mine), theirs(*ref)
    upstream = np.random.default_rng(seed).standard_normal(tuple(yt.shape))
    y.backward(md.tensor(upstream, dtype=md.float64))
    yt.backward(torch.tensor(upstream))
    results = [(y.numpy(), yt.detach().numpy())]
    for m, r, g in zip(mine, ref, grad):
        if g:
            ours_grad = np.zeros(m.shape) if m.grad is None else m.grad.numpy()
            results.append((ours_grad, r.grad.numpy()))
    return results


def _assert_parity(ours, theirs, arrays, grad=None):
    for a, b in _run_both(ours, theirs, arrays, grad):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


# ------------------------------------------------------------------ convolutions

CONVS = [
    ("conv1d", (2, 4, 9), (6, 4, 3), dict(padding=1)),
    ("conv1d", (2, 4, 9), (6, 2, 3), dict(stride=2, dilation=2, groups=2)),
    ("conv1d", (2, 4, 9), (4, 1, 3), dict(padding=2, groups=4)),
    (
        "conv2d",
        (2, 6, 7, 8),
        (4, 3, 3, 2),
        dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
    ),
    ("conv2d", (2, 6, 7, 8), (6, 1, 3, 3), dict(padding=1, groups=6)),  # depthwise
    ("conv2d", (2, 4, 6, 5), (8, 1, 3, 3), dict(stride=2, groups=4)),  # depthwise multiplier 2
    ("conv3d", (2, 4, 4, 6, 5), (6, 2, 3, 2, 3), dict(padding=1, groups=2)),
    ("conv3d", (1, 3, 4, 5, 5), (3, 1, 2, 3, 3), dict(stride=(1, 2, 2), groups=3)),
    ("conv_transpose1d", (2, 4, 5), (4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose1d", (2, 4, 5), (4, 2, 3), dict(stride=3, groups=2, dilation=2)),
    ("conv_transpose2d", (2, 6, 4, 5), (6, 2, 3, 3), dict(stride=2, padding=1, groups=3)),
    ("conv_transpose2d", (2, 4, 4, 3), (4, 1, 2, 3), dict(stride=2, output_padding=1, groups=4)),
    ("conv_transpose3d", (2, 4, 3, 4, 3), (4, 3, 2, 3, 2), dict(stride=(1, 2, 2), dilation=2)),
    # output_padding >= stride (allowed below the dilation): windows past the input's end
    ("conv_transpose2d", (2, 4, 5, 6), (4, 3, 3, 3), dict(dilation=2, output_padding=1)),
    (
        "conv_transpose2d",
        (2, 4, 4, 5),
        (4, 2, 3, 3),
        dict(stride=(2, 1), padding=1, dilation=3, output_padding=2, groups=2),
    ),
    ("conv_transpose1d", (2, 4, 5), (4, 3, 3), dict(stride=2, dilation=3, output_padding=2)),
    (
        "conv_transpose3d",
        (1, 4, 2, 3, 2),
        (4, 1, 2, 2, 3),
        dict(stride=(1, 2, 1), dilation=(2, 3, 3), output_padding=(1, 2, 2), groups=2),
    ),
    ("conv_transpose3d", (2, 4, 3, 4, 3), (4, 1, 2, 3, 2), dict(stride=2, padding=1, groups=4)),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("name, x_shape, w_shape, kwargs", CONVS, ids=str)
def test_convolutions_match_pytorch(name, x_shape, w_shape, kwargs, fast_paths, bias):
    torch = pytest.importorskip("torch")
    transposed = "transpose" in name
    c_out = w_shape[1] * kwargs.get("groups", 1) if transposed else w_shape[0]
    shapes = [x_shape, w_shape] + ([(c_out,)] if bias else [])
    with md.fast_paths(fast_paths):
        _assert_parity(
            lambda *t: getattr(F, name)(*t, **kwargs),
            lambda *t: getattr(torch.nn.functional, name)(*t, **kwargs),
            _arrays(*shapes),
        )


EMPTY_BATCH = [
    ("conv2d", (0, 3, 5, 5), (4, 3, 3, 3), dict(padding=1)),
    ("conv2d", (0, 4, 5, 5), (4, 1, 3, 3), dict(groups=4)),  # depthwise
    ("conv3d", (0, 2, 3, 4, 4), (3, 2, 2, 2, 2), dict(stride=2)),
    ("conv_transpose2d", (0, 3, 4, 4), (3, 2, 4, 4), dict(stride=2, padding=1)),
    ("conv_transpose1d", (0, 4, 5), (4, 1, 3), dict(groups=2)),
]


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("name, x_shape, w_shape, kwargs", EMPTY_BATCH, ids=str)
def test_convolutions_of_a_batch_of_no_samples_match_pytorch(
    name, x_shape, w_shape, kwargs, fast_paths
):
    torch = pytest.importorskip("torch")
    x, w = _arrays(x_shape, w_shape)
    c_out = w_shape[1] * kwargs.get("groups", 1) if "transpose" in name else w_shape[0]
    b = _arrays((c_out,))[0]
    with md.fast_paths(fast_paths):
        ours = [md.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = getattr(F, name)(*ours, **kwargs)
        y.sum().backward()
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    expected = getattr(torch.nn.functional, name)(*theirs, **kwargs)
    expected.sum().backward()
    assert y.shape == tuple(expected.shape)
    for t, e in zip(ours, theirs):
        assert t.grad.shape == tuple(e.grad.shape) and not t.grad.numpy().any()


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "reference"])
def test_group_norm_and_layer_norm_of_no_values(fast_paths):
    with md.fast_paths(fast_paths):
        norm = md.nn.GroupNorm(2, 4)
        x = md.zeros(0, 4, 3, 3, requires_grad=True)
        y = norm(x)
        y.sum().backward()
        assert y.shape == (0, 4, 3, 3) and x.grad.shape == (0, 4, 3, 3)
        assert not norm.weight.grad.numpy().any() and not norm.bias.grad.numpy().any()
        rows, w = md.zeros(3, 0, requires_grad=True), md.zeros(0, requires_grad=True)
        out = F.layer_norm(rows, (0,), w)
        out.sum().backward()
        assert out.shape == (3, 0) and rows.grad.shape == (3, 0) and w.grad.shape == (0,)


def test_groups_one_keeps_the_fast_convolution_and_groups_take_the_grouped_one():
    x, w1, wg = md.randn(2, 4, 6, 6), md.randn(3, 4, 3, 3), md.randn(4, 2, 3, 3)
    y = F.conv2d(x, w1.requires_grad_(True), padding=1)
    assert type(y._ctx) is Convolution and y._ctx.fast is not None
    y = F.conv2d(x, wg.requires_grad_(True), padding=1, groups=2)
    assert type(y._ctx) is GroupedConvolution


def test_grouped_convolution_is_the_concatenation_of_its_groups():
    x, w, b = (md.tensor(a, dtype=md.float64) for a in _arrays((2, 6, 5, 5), (4, 3, 3, 3), (4,)))
    grouped = F.conv2d(x, w, b, padding=1, groups=2).numpy()
    halves = [
        F.conv2d(x[:, 3 * i : 3 * i + 3], w[2 * i : 2 * i + 2], b[2 * i : 2 * i + 2], padding=1)
        for i in range(2)
    ]
    np.testing.assert_allclose(grouped, np.concatenate([h.numpy() for h in halves], axis=1))


CONV_MODULES = [
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, groups=2), (2, 4, 9)),
    ("Conv2d", (6, 6, 3), dict(padding=1, groups=6), (2, 6, 5, 7)),
    ("Conv2d", (4, 8, (3, 2)), dict(groups=2, bias=False), (2, 4, 5, 6)),
    ("Conv3d", (4, 6, (1, 3, 3)), dict(padding=(0, 1, 1), groups=2), (1, 4, 3, 5, 4)),
    ("ConvTranspose1d", (4, 6, 3), dict(stride=2, output_padding=1, groups=2), (2, 4, 5)),
    ("ConvTranspose2d", (4, 8, 3), dict(stride=2, padding=1, groups=4), (2, 4, 3, 4)),
    ("ConvTranspose3d", (4, 2, 2), dict(stride=2, bias=False), (1, 4, 2, 3, 2)),
    ("ConvTranspose3d", (4, 6, (1, 2, 2)), dict(stride=(1, 2, 2), groups=2), (1, 4, 2, 3, 2)),
]


@pytest.mark.parametrize("name, args, kwargs, x_shape", CONV_MODULES, ids=str)
def test_conv_modules_have_pytorchs_state_dict_and_outputs(name, args, kwargs, x_shape):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, name)(*args, **kwargs).double()
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    (x,) = _arrays(x_shape)
    _assert_parity(ours, theirs, [x])


@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda: nn.Conv2d(32, 64, 3, groups=32), 9),  # weight (64, 1, 3, 3)
        (lambda: nn.Conv1d(16, 64, 5, groups=4), 4 * 5),
        (lambda: nn.ConvTranspose2d(16, 64, 3, groups=4), 16 * 9),  # weight (16, 16, 3, 3)
    ],
)
def test_grouped_conv_init_is_uniform_within_one_over_sqrt_fan_in(make, fan_in):
    layer = make()
    bound = 1 / np.sqrt(fan_in)
    w = layer.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(layer.bias.numpy()).max() <= bound


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: F.conv2d(md.randn(1, 4, 5, 5), md.randn(4, 3, 3, 3), groups=2),
            r"4 channels.*groups=2 expects 6",
        ),
        (
            lambda: F.conv2d(md.randn(1, 4, 5, 5), md.randn(3, 2, 3, 3), groups=2),
            r"\(3, 2, 3, 3\).*not divisible by groups=2",
        ),
        (
            lambda: F.conv1d(md.randn(1, 4, 5), md.randn(3, 4, 3), groups=0),
            r"positive integer, got 0",
        ),
        (lambda: F.conv1d(md.randn(1, 4, 5, 5), md.randn(3, 4, 3)), r"3 dims.*\(1, 4, 5, 5\)"),
        (
            lambda: F.conv_transpose1d(md.randn(1, 4, 5), md.randn(3, 2, 3)),
            r"4 channels.*expects 3",
        ),
        (
            lambda: F.conv_transpose3d(
                md.randn(1, 4, 2, 2, 2), md.randn(4, 2, 2, 2, 2), stride=2, output_padding=2
            ),
            r"output_padding \(2, 2, 2\).*stride \(2, 2, 2\)",
        ),
        (
            lambda: nn.Conv2d(6, 4, 3, groups=4),
            r"in_channels \(6\) must be divisible by groups \(4\)",
        ),
        (
            lambda: nn.ConvTranspose1d(4, 6, 3, groups=4),
            r"out_channels \(6\) must be divisible by groups \(4\)",
        ),
    ],
)
def test_convolution_errors_name_the_shapes_and_groups(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ pooling


@pytest.mark.parametrize(
    "name, shape, size",
    [
        ("adaptive_max_pool2d", (2, 3, 5, 7), (3, 4)),
        ("adaptive_max_pool2d", (2, 3, 6, 6), 1),
        ("adaptive_max_pool2d", (2, 3, 5, 7), (None, 3)),
        ("adaptive_max_pool1d", (2, 3, 7), 4),
        ("adaptive_max_pool3d", (1, 2, 4, 5, 3), (3, 2, 2)),
        ("adaptive_avg_pool1d", (2, 3, 7), 3),
        ("adaptive_avg_pool3d", (1, 2, 4, 5, 3), (3, 2, 2)),
        ("avg_pool3d", (1, 2, 4, 5, 6), 2),
    ],
)
def test_pools_match_pytorch(name, shape, size):
    torch = pytest.importorskip("torch")
    _assert_parity(
        lambda t: getattr(F, name)(t, size),
        lambda t: getattr(torch.nn.functional, name)(t, size),
        _arrays(shape),
    )


def test_adaptive_max_pool_indices_match_pytorch_with_ties():
    torch = pytest.importorskip("torch")
    x = np.round(np.random.default_rng(0).standard_normal((2, 3, 7, 5)))  # many ties
    y, i = F.adaptive_max_pool2d(md.tensor(x, dtype=md.float64), (3, 2), return_indices=True)
    yt, it = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), (3, 2), return_indices=True)
    np.testing.assert_array_equal(y.numpy(), yt.numpy())
    np.testing.assert_array_equal(i.numpy(), it.numpy())
    assert i.dtype == np.int64
    _assert_parity(
        lambda t: nn.AdaptiveMaxPool2d((3, 2))(t),
        lambda t: torch.nn.AdaptiveMaxPool2d((3, 2))(t),
        [x],
    )


# ------------------------------------------------------------------ interpolate

INTERPOLATIONS = [
    ((2, 3, 5, 7), dict(size=(8, 11), mode="bilinear")),
    ((2, 3, 5, 7), dict(size=(8, 11), mode="bilinear", align_corners=True)),
    ((2, 3, 5, 7), dict(size=(3, 4), mode="bilinear")),
    ((2, 3, 5, 7), dict(size=(1, 4), mode="bilinear", align_corners=True)),
    ((2, 3, 5, 7), dict(scale_factor=1.7, mode="bilinear")),
    ((2, 3, 5, 7), dict(scale_factor=(0.6, 1.5), mode="bilinear", recompute_scale_factor=True)),
    ((2, 3, 5, 7), dict(scale_factor=2, mode="nearest")),
    ((2, 3, 5, 7), dict(scale_factor=1.3, mode="nearest")),
    ((2, 3, 5, 7), dict(size=(9, 5), mode="nearest")),
    ((2, 3, 5, 7), dict(scale_factor=(0.6, 1.5), mode="nearest")),
    ((2, 3, 5, 7), dict(size=(3, 4), mode="area")),
    ((2, 3, 6), dict(scale_factor=2.5, mode="linear", align_corners=True)),
    ((2, 3, 6), dict(size=4, mode="linear")),
    ((2, 3, 6), dict(size=13, mode="nearest")),
    ((2, 3, 4, 5, 3), dict(size=(5, 7, 6), mode="trilinear")),
    ((2, 3, 4, 5, 3), dict(scale_factor=(2, 0.5, 1.5), mode="trilinear", align_corners=True)),
    ((2, 3, 4, 5, 3), dict(scale_factor=2, mode="nearest")),
]


@pytest.mark.parametrize("shape, kwargs", INTERPOLATIONS, ids=str)
def test_interpolate_matches_pytorch(shape, kwargs):
    torch = pytest.importorskip("torch")
    _assert_parity(
        lambda t: F.interpolate(t, **kwargs),
        lambda t: torch.nn.functional.interpolate(t, **kwargs),
        _arrays(shape),
    )


@pytest.mark.parametrize(
    "dtype, spatial", [("float32", 1), ("float32", 2), ("float32", 3), ("float64", 2)]
)
def test_nearest_indices_are_computed_in_float32_as_pytorch(dtype, spatial):
    """in / out and its product with the output index are float32 in PyTorch; sizes
    where float64 arithmetic would floor differently (26 -> 22) still agree. (PyTorch's
    1-d and 3-d kernels on float64 inputs round a few such cases differently again.)"""
    torch = pytest.importorskip("torch")
    for n_in in range(1, 40):
        for n_out in range(1, 50):
            x = np.arange(n_in, dtype=dtype).reshape((1, 1) + (1,) * (spatial - 1) + (n_in,))
            size = (1,) * (spatial - 1) + (n_out,)
            ours = F.interpolate(md.tensor(x, dtype=x.dtype), size=size).numpy()
            theirs = torch.nn.functional.interpolate(torch.tensor(x), size=size).numpy()
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{n_in} -> {n_out}")


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(scale_factor=2), (2, 3, 4, 5)),
        (dict(size=(7, 9), mode="bilinear", align_corners=True), (2, 3, 4, 5)),
        (dict(scale_factor=(1.5, 2.0), mode="bilinear"), (2, 3, 4, 5)),
        (dict(scale_factor=2, mode="trilinear"), (1, 2, 2, 3, 2)),
    ],
)
def test_upsample_module_matches_pytorch(kwargs, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
    assert repr(ours) == repr(theirs) and ours.state_dict() == {}
    _assert_parity(ours, theirs, _arrays(shape))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: F.interpolate(x, size=4, scale_factor=2), "only one of size or scale_factor"),
        (lambda x: F.interpolate(x), "either size or scale_factor"),
        (
            lambda x: F.interpolate(x, size=4, mode="trilinear"),
            r"4D input .*trilinear mode needs 5D",
        ),
        (lambda x: F.interpolate(x, size=4, align_corners=True), "align_corners option"),
        (lambda x: F.interpolate(x, size=(4, 5, 6)), r"2 spatial dimensions but size"),
        (lambda x: F.interpolate(x, size=4, mode="bicubic"), "'bicubic' is not supported"),
    ],
)
def test_interpolate_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(md.randn(1, 2, 3, 3))


# ------------------------------------------------------------------ grid_sample, affine_grid


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("spatial", [2, 3], ids=["4-d", "5-d"])
def test_grid_sample_matches_pytorch_in_x_and_grid(mode, padding_mode, align_corners, spatial):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x_shape = (2, 3, 5, 7) if spatial == 2 else (2, 3, 4, 5, 3)
    grid_shape = (2, 4, 6, 2) if spatial == 2 else (2, 3, 4, 2, 3)
    x, grid = rng.standard_normal(x_shape), rng.uniform(-1.25, 1.25, grid_shape)
    kwargs = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    _assert_parity(
        lambda a, g: F.grid_sample(a, g, **kwargs),
        lambda a, g: torch.nn.functional.grid_sample(a, g, **kwargs),
        [x, grid],
    )


def test_grid_sample_of_the_identity_grid_returns_the_input():
    x = md.tensor(_arrays((2, 3, 5, 4))[0], dtype=md.float64)
    theta = md.tensor(np.tile(np.eye(2, 3), (2, 1, 1)), dtype=md.float64)
    for align_corners in (False, True):
        grid = F.affine_grid(theta, x.shape, align_corners=align_corners)
        y = F.grid_sample(x, grid, align_corners=align_corners)
        np.testing.assert_allclose(y.numpy(), x.numpy(), atol=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(
    "theta_shape, size",
    [((2, 2, 3), (2, 3, 5, 7)), ((2, 2, 3), (2, 1, 1, 4)), ((2, 3, 4), (2, 3, 4, 5, 3))],
)
@pytest.mark.filterwarnings("ignore:Since version 1.3.0")  # PyTorch on unit-size grids
def test_affine_grid_matches_pytorch(theta_shape, size, align_corners):
    torch = pytest.importorskip("torch")
    _assert_parity(
        lambda t: F.affine_grid(t, size, align_corners=align_corners),
        lambda t: torch.nn.functional.affine_grid(t, size, align_corners=align_corners),
        _arrays(theta_shape),
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: F.grid_sample(md.randn(1, 2, 3, 3), md.randn(1, 4, 4, 3)), r"grid \(1, 4, 4, 3\)"),
        (lambda: F.grid_sample(md.randn(2, 2, 3, 3), md.randn(1, 4, 4, 2)), "batch sizes"),
        (
            lambda: F.grid_sample(md.randn(1, 2, 3, 3), md.randn(1, 4, 4, 2), mode="bicubic"),
            "'bicubic'",
        ),
        (
            lambda: F.grid_sample(
                md.randn(1, 2, 3, 3), md.randn(1, 4, 4, 2), padding_mode="reflection"
            ),
            "'reflection'",
        ),
        (lambda: F.affine_grid(md.randn(1, 2, 3), (1, 3, 4)), r"4D and 5D sizes.*\(1, 3, 4\)"),
        (lambda: F.affine_grid(md.randn(1, 3, 4), (1, 3, 4, 4)), r"\(1, 2, 3\).*\(1, 3, 4\)"),
    ],
)
def test_grid_errors_name_the_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ pad, pixel shuffle

PADS = [
    ((2, 3, 5, 7), (1, 2), "constant"),
    ((2, 3, 5, 7), (1, 2, 3, 0), "constant"),
    ((2, 3, 5, 7), (1, -1, 2, -2), "constant"),
    ((2, 3, 5, 7), (1, 1, 1, 1, 1, 1, 1, 1), "constant"),
    ((2, 3, 5), (4, 2), "reflect"),
    ((2, 3, 5, 7), (1, 2, 0, 3), "reflect"),
    ((3, 5, 7), (1, 2, 4, 3), "reflect"),
    ((2, 3, 4, 5, 6), (2, 1, 1, 1, 3, 1), "reflect"),
    ((2, 3, 5, 7), (2, 1, 3, 0), "replicate"),
    ((2, 3, 4, 5, 6), (1, 1, 2, 1, 1, 3), "replicate"),
    ((2, 3, 5), (6, 2), "replicate"),
    ((2, 3, 5, 7), (2, 3, 1, 1), "circular"),
    ((2, 3, 5), (5, 0), "circular"),
]


@pytest.mark.parametrize("shape, widths, mode", PADS, ids=str)
def test_pad_matches_pytorch(shape, widths, mode):
    torch = pytest.importorskip("torch")
    _assert_parity(
        lambda t: F.pad(t, widths, mode=mode),
        lambda t: torch.nn.functional.pad(t, widths, mode=mode),
        _arrays(shape),
    )


def test_pad_constant_value_matches_pytorch():
    torch = pytest.importorskip("torch")
    _assert_parity(
        lambda t: F.pad(t, (1, 1, 2, 0), value=2.5),
        lambda t: torch.nn.functional.pad(t, (1, 1, 2, 0), value=2.5),
        _arrays((2, 3, 4, 4)),
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: F.pad(x, (1, 2, 3)), "divisible by 2"),
        (lambda x: F.pad(x, (1,) * 10), r"pads 5 dimensions.*has 4"),
        (
            lambda x: F.pad(x, (3, 0, 0, 0), mode="reflect"),
            r"\(3, 0\) of dimension 3 must be less than its size 3",
        ),
        (lambda x: F.pad(x, (1, 1), mode="reflect", value=1.0), "doesn't take a value"),
        (lambda x: F.pad(x, (1, 1), mode="wrap"), "'wrap'"),
        (lambda x: F.pad(x, (1,) * 8, mode="replicate"), r"4 dimension\(s\) needs a 5-d or 6-d"),
    ],
)
def test_pad_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(md.randn(1, 2, 3, 3))


@pytest.mark.parametrize(
    "name, shape, r",
    [
        ("pixel_shuffle", (2, 8, 3, 4), 2),
        ("pixel_shuffle", (2, 2, 9, 3, 4), 3),
        ("pixel_shuffle", (18, 2, 3), 3),
        ("pixel_unshuffle", (2, 3, 4, 6), 2),
        ("pixel_unshuffle", (2, 2, 1, 6, 9), 3),
    ],
)
def test_pixel_shuffles_match_pytorch(name, shape, r):
    torch = pytest.importorskip("torch")
    _assert_parity(
        lambda t: getattr(F, name)(t, r),
        lambda t: getattr(torch.nn.functional, name)(t, r),
        _arrays(shape),
    )


def test_pixel_unshuffle_inverts_pixel_shuffle_and_modules_match_pytorch():
    torch = pytest.importorskip("torch")
    x = md.randn(2, 12, 3, 5)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(), x.numpy())
    for ours, theirs in [
        (nn.PixelShuffle(2), torch.nn.PixelShuffle(2)),
        (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2)),
    ]:
        assert repr(ours) == repr(theirs)
    _assert_parity(nn.PixelShuffle(2), torch.nn.PixelShuffle(2), _arrays((2, 8, 3, 4)))


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: F.pixel_shuffle(md.randn(1, 6, 3, 3), 2),
            r"upscale_factor\^2 = 4, got \(1, 6, 3, 3\)",
        ),
        (
            lambda: F.pixel_unshuffle(md.randn(1, 6, 3, 4), 2),
            r"downscale_factor = 2, got \(1, 6, 3, 4\)",
        ),
    ],
)
def test_pixel_shuffle_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ modules


@pytest.mark.parametrize(
    "expr",
    [
        "AdaptiveMaxPool2d((3, 4))",
        "AdaptiveMaxPool2d(1, return_indices=True)",
        "AdaptiveMaxPool1d(3)",
        "AdaptiveAvgPool1d(4)",
        "Upsample(scale_factor=2)",
        "Upsample(size=(4, 5), mode='bilinear')",
        "PixelShuffle(3)",
        "PixelUnshuffle(2)",
        "Conv1d(4, 6, 3, groups=2)",
        "Conv2d(8, 8, 3, padding=1, groups=8, bias=False)",
        "ConvTranspose1d(3, 5, 4, stride=2, output_padding=1, dilation=2)",
        "ConvTranspose3d(4, 6, 2, stride=2, groups=2)",
    ],
)
def test_new_module_reprs_match_pytorch(expr):
    torch = pytest.importorskip("torch")  # noqa: F841 (used by eval)
    assert repr(eval(f"nn.{expr}")) == repr(eval(f"torch.nn.{expr}"))


def test_a_model_of_the_new_layers_matches_pytorch_after_loading_its_weights():
    torch = pytest.importorskip("torch")

    def build(lib):
        return lib.Sequential(
            lib.Conv2d(3, 8, 3, padding=1),
            lib.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise
            lib.PixelShuffle(2),  # (2, 2, 12, 16)
            lib.Upsample(scale_factor=0.5, mode="bilinear"),
            lib.ConvTranspose2d(2, 4, 2, stride=2, groups=2),
            lib.AdaptiveMaxPool2d((3, 3)),
        )

    torch.manual_seed(0)
    theirs = build(torch.nn).double()
    ours = build(nn).double()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    _assert_parity(ours, theirs, _arrays((2, 3, 6, 8)))
