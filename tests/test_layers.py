"""Layers match PyTorch: parameter names and shapes, outputs after copying PyTorch's
weights, batch-norm running statistics, default initialisation and repr."""

import math

import numpy as np
import pytest

import minideep as md
from minideep import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def cnn(lib):
    """A small image classifier written once for both libraries."""
    return lib.Sequential(
        lib.Conv2d(3, 8, 3, padding=1),
        lib.BatchNorm2d(8),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Conv2d(8, 12, (3, 2), stride=2, padding=(1, 0), bias=False),
        lib.BatchNorm2d(12, momentum=None),
        lib.LeakyReLU(0.1),
        lib.AvgPool2d(3, stride=1, padding=1),
        lib.AdaptiveAvgPool2d((2, 3)),
        lib.Flatten(),
        lib.Dropout(0.3),
        lib.Linear(72, 16),
        lib.Tanh(),
        lib.Linear(16, 5),
    )


def video_net(lib):
    """A small clip classifier: (N, C, T, H, W) -> (N, classes)."""
    return lib.Sequential(
        lib.Conv3d(3, 6, (3, 3, 3), padding=1),
        lib.BatchNorm3d(6),
        lib.ReLU(),
        lib.MaxPool3d((1, 2, 2)),
        lib.Conv3d(6, 8, 3, stride=(1, 2, 2), bias=False),
        lib.Sigmoid(),
        lib.AdaptiveAvgPool3d(1),
        lib.Flatten(),
        lib.Linear(8, 4),
    )


def decoder(lib):
    """Upsampling with transposed convolutions, as in an autoencoder."""
    return lib.Sequential(
        lib.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1),
        lib.BatchNorm2d(4),
        lib.ReLU(),
        lib.ConvTranspose2d(4, 2, 2, stride=2, bias=False),
        lib.Softmax(dim=1),
    )


def bn_mlp(lib):
    return lib.Sequential(
        lib.Linear(6, 5), lib.BatchNorm1d(5), lib.ReLU(), lib.Linear(5, 3), lib.LogSoftmax(dim=1)
    )


MODELS = [
    ("cnn", cnn, (4, 3, 12, 10)),
    ("video", video_net, (2, 3, 4, 9, 8)),
    ("decoder", decoder, (2, 6, 5, 4)),
    ("bn mlp", bn_mlp, (7, 6)),
]
IDS = [m[0] for m in MODELS]


def _torch_trained(build, shape, seed=0):
    """A PyTorch model with non-trivial running statistics, in eval mode."""
    torch.manual_seed(seed)
    model = build(tnn)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(*shape) * 2 + 0.5)
    return model.eval()


def _copy_weights(theirs):
    return {k: v.numpy() for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("name, build, shape", MODELS, ids=IDS)
def test_state_dict_has_pytorchs_keys_and_shapes(name, build, shape):
    ours = {k: v.shape for k, v in build(nn).state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in build(tnn).state_dict().items()}
    assert list(ours) == list(theirs)
    assert ours == theirs


@pytest.mark.parametrize("name, build, shape", MODELS, ids=IDS)
def test_same_outputs_after_loading_pytorch_weights(name, build, shape):
    theirs = _torch_trained(build, shape)
    ours = build(nn)
    ours.load_state_dict(_copy_weights(theirs))
    ours.eval()
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    out = ours(md.tensor(x))
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, build, shape", MODELS, ids=IDS)
def test_training_step_gradients_match_pytorch(name, build, shape):
    theirs = _torch_trained(build, shape).double().train()
    for m in theirs.modules():
        if isinstance(m, tnn.Dropout):
            m.p = 0.0
    ours = build(nn)
    ours.load_state_dict(_copy_weights(theirs))
    ours.double().train()
    for m in ours.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    x = np.random.default_rng(2).standard_normal(shape)
    upstream = None
    out = ours(md.tensor(x, dtype=md.float64))
    upstream = np.random.default_rng(3).standard_normal(out.shape)
    (out * md.tensor(upstream, dtype=md.float64)).sum().backward()
    expected = theirs(torch.tensor(x))
    (expected * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-9)
    grads = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), grads[key].grad.numpy(), rtol=1e-8, atol=1e-9, err_msg=key
        )
    for key, value in theirs.state_dict().items():  # running statistics after the step
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-9, err_msg=key)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda lib: lib.BatchNorm1d(4), (8, 4)),
        (lambda lib: lib.BatchNorm1d(3, momentum=0.5), (5, 3, 6)),
        (lambda lib: lib.BatchNorm2d(3), (4, 3, 5, 5)),
        (lambda lib: lib.BatchNorm2d(3, momentum=None), (4, 3, 2, 3)),
        (lambda lib: lib.BatchNorm2d(2, affine=False, eps=1e-3), (3, 2, 4, 4)),
    ],
)
def test_batchnorm_running_stats_match_pytorch_after_training_forwards(make, shape):
    ours, theirs = make(nn), make(tnn)
    rng = np.random.default_rng(5)
    for step in range(4):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        out = ours(md.tensor(x))
        expected = theirs(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-5, err_msg=key)
    assert int(ours.num_batches_tracked.item()) == 4
    assert ours.num_batches_tracked.dtype == np.int64


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval():
    ours, theirs = (
        nn.BatchNorm2d(3, track_running_stats=False),
        tnn.BatchNorm2d(3, track_running_stats=False),
    )
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32)
    out = ours.eval()(md.tensor(x)).numpy()
    np.testing.assert_allclose(out, theirs.eval()(torch.tensor(x)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "layer, shape", [(nn.BatchNorm1d(3), (2, 3, 4, 4)), (nn.BatchNorm2d(3), (4, 3))]
)
def test_batchnorm_rejects_inputs_of_the_wrong_rank(layer, shape):
    with pytest.raises(ValueError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        layer(md.randn(*shape))


@pytest.mark.parametrize(
    "make, target",
    [
        (lambda lib: lib.MSELoss(), lambda: np.random.default_rng(0).standard_normal((4, 3))),
        (lambda lib: lib.MSELoss(reduction="sum"), lambda: np.ones((4, 3))),
        (lambda lib: lib.CrossEntropyLoss(), lambda: np.array([0, 2, 1, 2])),
        (
            lambda lib: lib.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"),
            lambda: np.array([0, 2, 1, 2]),
        ),
        (lambda lib: lib.BCEWithLogitsLoss(), lambda: np.eye(4, 3)),
        (lambda lib: lib.BCELoss(reduction="none"), lambda: np.eye(4, 3)),
    ],
)
def test_loss_modules_match_pytorch(make, target):
    logits = np.random.default_rng(4).standard_normal((4, 3)).astype(np.float32)
    t = target()
    ours_in, theirs_in = md.tensor(logits), torch.tensor(logits)
    if isinstance(make(nn), nn.BCELoss):
        ours_in, theirs_in = ours_in.sigmoid(), theirs_in.sigmoid()
    t_ours = md.tensor(t) if t.dtype.kind == "i" else md.tensor(t.astype(np.float32))
    t_theirs = torch.tensor(t) if t.dtype.kind == "i" else torch.tensor(t.astype(np.float32))
    out = make(nn)(ours_in, t_ours)
    expected = make(tnn)(theirs_in, t_theirs)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_weighted_loss_modules_keep_weight_as_a_buffer_like_pytorch():
    w = np.array([0.2, 1.0, 3.0], dtype=np.float32)
    ours = nn.CrossEntropyLoss(weight=md.tensor(w))
    theirs = tnn.CrossEntropyLoss(weight=torch.tensor(w))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    logits = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    t = np.array([0, 1, 2, 2, 1])
    np.testing.assert_allclose(
        ours(md.tensor(logits), md.tensor(t)).item(),
        theirs(torch.tensor(logits), torch.tensor(t)).item(),
        rtol=1e-6,
    )


# ------------------------------------------------------------------ repr

REPRS = [
    "Linear(4, 3)",
    "Linear(4, 3, bias=False)",
    "Conv2d(3, 16, 3, padding=1)",
    "Conv2d(3, 16, (3, 5), stride=2, dilation=(2, 1), bias=False)",
    "Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2))",
    "ConvTranspose2d(8, 4, 2, stride=2)",
    "ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)",
    "MaxPool2d(2)",
    "MaxPool2d(3, stride=2, padding=1)",
    "MaxPool3d((1, 2, 2))",
    "AvgPool2d(2)",
    "AvgPool2d(3, 1, 1)",
    "AdaptiveAvgPool2d(1)",
    "AdaptiveAvgPool2d((7, 7))",
    "Flatten()",
    "Flatten(0, 2)",
    "ReLU()",
    "LeakyReLU(0.2)",
    "Sigmoid()",
    "Tanh()",
    "Softmax(dim=1)",
    "Dropout()",
    "Dropout(0.25)",
    "BatchNorm1d(16)",
    "BatchNorm2d(8, momentum=None, affine=False)",
    "BatchNorm2d(4, bias=False)",
    "MSELoss()",
    "CrossEntropyLoss()",
    "BCEWithLogitsLoss()",
    "NLLLoss()",
    "BCELoss()",
]


@pytest.mark.parametrize("expr", REPRS)
def test_repr_matches_pytorch(expr):
    assert repr(eval(f"nn.{expr}")) == repr(eval(f"tnn.{expr}"))


@pytest.mark.parametrize("name, build, shape", MODELS, ids=IDS)
def test_nested_model_repr_matches_pytorch(name, build, shape):
    assert repr(build(nn)) == repr(build(tnn))


# ------------------------------------------------------------------ initialisation


@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda: nn.Linear(200, 300), 200),
        (lambda: nn.Conv2d(16, 64, 3), 16 * 9),
        (lambda: nn.Conv3d(4, 32, (2, 3, 3)), 4 * 18),
        (lambda: nn.ConvTranspose2d(64, 16, 3), 16 * 9),  # weight (in, out, k, k): fan_in = out*k*k
    ],
)
def test_default_init_is_uniform_within_one_over_sqrt_fan_in(make, fan_in):
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.95 * bound  # fills the interval, not a narrower one
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # std of U(-b, b)
    assert abs(w.mean()) < 0.05 * bound


def test_batchnorm_starts_as_identity_affine_with_unit_running_var():
    bn = nn.BatchNorm2d(5)
    assert (bn.weight.numpy() == 1).all() and (bn.bias.numpy() == 0).all()
    assert (bn.running_mean.numpy() == 0).all() and (bn.running_var.numpy() == 1).all()


@pytest.mark.parametrize("make", [lambda: nn.Linear(5, 4), lambda: nn.Conv2d(2, 3, 3)])
def test_manual_seed_makes_initialisation_reproducible(make):
    md.manual_seed(123)
    first = make().state_dict()
    md.manual_seed(123)
    second = make().state_dict()
    md.manual_seed(124)
    other = make().state_dict()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert not np.array_equal(first["weight"], other["weight"])


def test_layers_accept_a_dtype():
    layer = nn.Linear(3, 2, dtype=md.float64)
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    assert layer(md.randn(4, 3, dtype=md.float64)).dtype == np.float64


# ------------------------------------------------------------------ behaviour


def test_dropout_layer_is_identity_in_eval_mode():
    layer, x = nn.Dropout(0.5), md.randn(20, 20)
    assert (layer(x).numpy() == 0).any()
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())


def test_flatten_and_identity_shapes():
    x = md.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Identity()(x) is x


def test_every_public_layer_is_exported():
    for name in nn.layers.__all__:
        assert getattr(nn, name) is getattr(nn.layers, name)
