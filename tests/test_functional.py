"""``md.nn.functional`` gives PyTorch's values and gradients (float64), and its losses
stay finite for huge logits. PyTorch parity tests are skipped without PyTorch."""

import warnings

import numpy as np
import pytest

import minideep as md
from minideep.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(11)


def _randn(*shape):
    return RNG.standard_normal(shape)


def _labels(high, *shape):
    return RNG.integers(0, high, shape)


def _uniform(low, high, *shape):
    return RNG.uniform(low, high, shape)


# (name, call(F, x, *args) -> output, float inputs (checked), integer inputs (targets)).
# Every call receives the functional module of its library first.
CASES = [
    ("linear", lambda f, x, w, b: f.linear(x, w, b), [_randn(2, 3, 4), _randn(5, 4), _randn(5)]),
    ("linear no bias", lambda f, x, w: f.linear(x, w), [_randn(4), _randn(3, 4)]),
    (
        "conv2d padding 1",
        lambda f, x, w, b: f.conv2d(x, w, b, padding=1),
        [_randn(2, 3, 7, 6), _randn(4, 3, 3, 3), _randn(4)],
    ),
    (
        "conv2d stride dilation pairs",
        lambda f, x, w, b: f.conv2d(x, w, b, stride=(2, 1), padding=(2, 1), dilation=(2, 1)),
        [_randn(2, 2, 9, 8), _randn(3, 2, 3, 2), _randn(3)],
    ),
    (
        "conv2d 1x1 stride 3",
        lambda f, x, w: f.conv2d(x, w, stride=3),
        [_randn(1, 4, 8, 7), _randn(2, 4, 1, 1)],
    ),
    (
        "conv3d",
        lambda f, x, w, b: f.conv3d(x, w, b, stride=(1, 2, 2), padding=1),
        [_randn(2, 2, 4, 7, 6), _randn(3, 2, 3, 3, 3), _randn(3)],
    ),
    (
        "conv_transpose2d",
        lambda f, x, w, b: f.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        [_randn(2, 3, 4, 5), _randn(3, 2, 3, 3), _randn(2)],
    ),
    (
        "conv_transpose2d stride (1, 3)",
        lambda f, x, w: f.conv_transpose2d(x, w, stride=(1, 3), padding=(0, 1)),
        [_randn(1, 2, 3, 4), _randn(2, 4, 2, 3)],
    ),
    ("max_pool2d", lambda f, x: f.max_pool2d(x, 2), [_randn(2, 3, 6, 7)]),
    (
        "max_pool2d padded overlapping",
        lambda f, x: f.max_pool2d(x, 3, stride=2, padding=1),
        [_randn(2, 2, 7, 8)],
    ),
    (
        "max_pool2d dilation",
        lambda f, x: f.max_pool2d(x, (2, 3), stride=(1, 2), dilation=(2, 1)),
        [_randn(1, 2, 7, 8)],
    ),
    (
        "max_pool3d",
        lambda f, x: f.max_pool3d(x, (2, 2, 2), stride=(1, 2, 2), padding=(1, 0, 1)),
        [_randn(1, 2, 4, 6, 5)],
    ),
    ("avg_pool2d", lambda f, x: f.avg_pool2d(x, 3, stride=2, padding=1), [_randn(2, 2, 7, 6)]),
    (
        "avg_pool2d count_include_pad=False",
        lambda f, x: f.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False),
        [_randn(1, 2, 4, 5)],
    ),
    ("avg_pool3d", lambda f, x: f.avg_pool3d(x, 2), [_randn(1, 2, 4, 4, 5)]),
    ("adaptive_avg_pool2d 1", lambda f, x: f.adaptive_avg_pool2d(x, 1), [_randn(2, 3, 5, 4)]),
    (
        "adaptive_avg_pool2d uneven bins",
        lambda f, x: f.adaptive_avg_pool2d(x, (3, 4)),
        [_randn(2, 2, 7, 10)],
    ),
    (
        "adaptive_avg_pool2d None keeps size",
        lambda f, x: f.adaptive_avg_pool2d(x, (None, 2)),
        [_randn(1, 2, 3, 5)],
    ),
    (
        "adaptive_avg_pool3d",
        lambda f, x: f.adaptive_avg_pool3d(x, (2, 3, 1)),
        [_randn(1, 2, 5, 7, 4)],
    ),
    (
        "batch_norm training (N, C, H, W)",
        lambda f, x, w, b: f.batch_norm(x, None, None, w, b, training=True),
        [_randn(4, 3, 5, 2), _randn(3), _randn(3)],
    ),
    (
        "batch_norm training (N, C)",
        lambda f, x, w, b: f.batch_norm(x, None, None, w, b, training=True, eps=1e-3),
        [_randn(6, 4), _randn(4), _randn(4)],
    ),
    (
        "batch_norm training (N, C, L) no affine",
        lambda f, x: f.batch_norm(x, None, None, training=True),
        [_randn(3, 2, 5)],
    ),
    ("mse_loss", lambda f, a, t: f.mse_loss(a, t), [_randn(3, 4), _randn(3, 4)]),
    (
        "mse_loss sum",
        lambda f, a, t: f.mse_loss(a, t, reduction="sum"),
        [_randn(5), _randn(5)],
    ),
    (
        "mse_loss none",
        lambda f, a, t: f.mse_loss(a, t, reduction="none"),
        [_randn(2, 3), _randn(2, 3)],
    ),
    (
        "binary_cross_entropy_with_logits",
        lambda f, x, t: f.binary_cross_entropy_with_logits(x, t),
        [_randn(4, 3) * 3, _uniform(0, 1, 4, 3)],
    ),
    (
        "binary_cross_entropy_with_logits weights none",
        lambda f, x, t, w, pw: f.binary_cross_entropy_with_logits(
            x, t, weight=w.detach(), pos_weight=pw.detach(), reduction="none"
        ),
        [_randn(4, 3) * 3, _uniform(0, 1, 4, 3), _uniform(0.5, 2, 4, 1), _uniform(0.5, 3, 3)],
    ),
    (
        "binary_cross_entropy",
        lambda f, p, t: f.binary_cross_entropy(p, t),
        [_uniform(0.02, 0.98, 3, 4), _uniform(0, 1, 3, 4)],
    ),
    (
        "binary_cross_entropy weight sum",
        lambda f, p, t, w: f.binary_cross_entropy(p, t, weight=w.detach(), reduction="sum"),
        [_uniform(0.02, 0.98, 3, 4), _uniform(0, 1, 3, 4), _uniform(0.5, 2, 4)],
    ),
]

# (name, call(F, x, target, weight), logits shape, target shape)
CLASS_CASES = [
    ("cross_entropy", lambda f, x, t, w: f.cross_entropy(x, t), (5, 4), (5,)),
    (
        "cross_entropy (N, C, d1, d2) sum",
        lambda f, x, t, w: f.cross_entropy(x, t, reduction="sum"),
        (2, 3, 4, 2),
        (2, 4, 2),
    ),
    (
        "cross_entropy none",
        lambda f, x, t, w: f.cross_entropy(x, t, reduction="none"),
        (2, 3, 4),
        (2, 4),
    ),
    (
        "cross_entropy weight ignore_index",
        lambda f, x, t, w: f.cross_entropy(x, t, weight=w, ignore_index=1),
        (8, 4),
        (8,),
    ),
    (
        "cross_entropy label_smoothing weight",
        lambda f, x, t, w: f.cross_entropy(x, t, weight=w, label_smoothing=0.15),
        (6, 4),
        (6,),
    ),
    (
        "cross_entropy label_smoothing ignore none",
        lambda f, x, t, w: f.cross_entropy(
            x, t, ignore_index=0, label_smoothing=0.3, reduction="none"
        ),
        (6, 4),
        (6,),
    ),
    (
        "nll_loss",
        lambda f, x, t, w: f.nll_loss(f.log_softmax(x, 1), t),
        (5, 4),
        (5,),
    ),
    (
        "nll_loss weight ignore (N, C, d)",
        lambda f, x, t, w: f.nll_loss(x, t, weight=w, ignore_index=2),
        (3, 4, 5),
        (3, 5),
    ),
    (
        "nll_loss sum",
        lambda f, x, t, w: f.nll_loss(x, t, reduction="sum"),
        (5, 4),
        (5,),
    ),
]


def _both(arrays):
    ours = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, theirs


def _compare(ours_out, theirs_out, ours_in, theirs_in):
    np.testing.assert_allclose(
        ours_out.numpy(), theirs_out.detach().numpy(), rtol=1e-10, atol=1e-10
    )
    upstream = RNG.standard_normal(tuple(theirs_out.shape))
    ours_out.backward(md.tensor(upstream, dtype=md.float64) if upstream.ndim else None)
    theirs_out.backward(torch.tensor(upstream) if upstream.ndim else None)
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if b.grad is None:
            continue
        assert a.grad is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(
            a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=f"gradient of input {i}"
        )


@pytest.mark.parametrize("name, call, arrays", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_pytorch(name, call, arrays):
    ours, theirs = _both(arrays)
    _compare(call(F, *ours), call(TF, *theirs), ours, theirs)


@pytest.mark.parametrize(
    "name, call, shape, target_shape", CLASS_CASES, ids=[c[0] for c in CLASS_CASES]
)
def test_class_losses_match_pytorch(name, call, shape, target_shape):
    (x,), (tx,) = _both([_randn(*shape)])
    target = _labels(shape[1], *target_shape)
    weight = _uniform(0.5, 2.0, shape[1])
    out = call(F, x, md.tensor(target), md.tensor(weight, dtype=md.float64))
    expected = call(TF, tx, torch.tensor(target), torch.tensor(weight))
    _compare(out, expected, [x], [tx])


def test_batch_norm_updates_running_stats_like_pytorch():
    x = _randn(8, 3, 4, 4)
    mean, var = md.zeros(3, dtype=md.float64), md.ones(3, dtype=md.float64)
    tmean, tvar = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(3):
        F.batch_norm(md.tensor(x, dtype=md.float64), mean, var, training=True, momentum=0.3)
        TF.batch_norm(torch.tensor(x), tmean, tvar, training=True, momentum=0.3)
        x = x * 1.5 + 0.7
    np.testing.assert_allclose(mean.numpy(), tmean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var.numpy(), tvar.numpy(), rtol=1e-12)


def test_batch_norm_in_eval_uses_running_stats():
    x, w, b = _randn(4, 3, 2, 2), _randn(3), _randn(3)
    mean, var = _randn(3), _uniform(0.5, 2, 3)
    (ox, ow, ob), (tx, tw, tb) = _both([x, w, b])
    out = F.batch_norm(
        ox,
        md.tensor(mean, dtype=md.float64),
        md.tensor(var, dtype=md.float64),
        ow,
        ob,
        training=False,
    )
    expected = TF.batch_norm(tx, torch.tensor(mean), torch.tensor(var), tw, tb, training=False)
    _compare(out, expected, [ox, ow, ob], [tx, tw, tb])


def test_batch_norm_in_training_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(md.randn(1, 3), None, None, training=True)


# ------------------------------------------------------------------ large logits

HUGE = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 3.0]])


def _finite(loss_fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (overflow, log(0)) fails the test
        x = md.tensor(args[0], requires_grad=True)
        loss = loss_fn(x, *args[1:])
        loss.backward()
    assert np.isfinite(loss.numpy()).all(), loss
    assert np.isfinite(x.grad.numpy()).all(), x.grad
    return loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name, loss_fn, target",
    [
        ("cross_entropy", F.cross_entropy, md.tensor([1, 0])),
        (
            "nll_loss of log_softmax",
            lambda x, t: F.nll_loss(F.log_softmax(x, 1), t),
            md.tensor([1, 0]),
        ),
        ("bce_with_logits", F.binary_cross_entropy_with_logits, md.tensor((HUGE > 0) * 1.0)),
        ("bce_with_logits wrong", F.binary_cross_entropy_with_logits, md.tensor((HUGE < 0) * 1.0)),
        (
            "bce of sigmoid",
            lambda x, t: F.binary_cross_entropy(x.sigmoid(), t),
            md.tensor((HUGE < 0) * 1.0),
        ),
        ("mse", F.mse_loss, md.tensor(-HUGE)),
    ],
)
def test_losses_stay_finite_at_logit_magnitude_1000(name, loss_fn, target, dtype):
    if target.dtype.kind == "f":
        target = target.to(dtype)
    _finite(loss_fn, HUGE.astype(dtype), target)


def test_cross_entropy_at_huge_logits_matches_pytorch():
    loss = F.cross_entropy(md.tensor(HUGE, dtype=md.float64), md.tensor([1, 0]))
    expected = TF.cross_entropy(torch.tensor(HUGE), torch.tensor([1, 0]))
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)


def test_bce_with_logits_at_huge_logits_matches_pytorch():
    target = (HUGE < 0) * 1.0
    loss = F.binary_cross_entropy_with_logits(md.tensor(HUGE, dtype=md.float64), md.tensor(target))
    expected = TF.binary_cross_entropy_with_logits(torch.tensor(HUGE), torch.tensor(target))
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)


def test_binary_cross_entropy_clamps_log_at_minus_100():
    loss = F.binary_cross_entropy(md.tensor([0.0, 1.0]), md.tensor([1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0])


# ------------------------------------------------------------------ dropout


def test_dropout_is_identity_in_eval():
    x = md.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x


def test_dropout_zeroes_about_p_and_scales_the_rest():
    md.manual_seed(0)
    x = md.ones(200, 200)
    y = F.dropout(x, p=0.3).numpy()
    assert abs((y == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)


def test_dropout_gradient_uses_the_same_mask():
    x = md.ones(50, 50, requires_grad=True)
    y = F.dropout(x, p=0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())


def test_dropout_is_reproducible_with_manual_seed():
    md.manual_seed(3)
    a = F.dropout(md.ones(10, 10)).numpy()
    md.manual_seed(3)
    b = F.dropout(md.ones(10, 10)).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_p_one_gives_zeros():
    assert (F.dropout(md.randn(3, 3), p=1.0).numpy() == 0).all()


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: F.conv2d(md.randn(1, 3, 5, 5), md.randn(4, 2, 3, 3)), r"3 channels.*expects 2"),
        (lambda: F.conv2d(md.randn(3, 5, 5), md.randn(4, 3, 3, 3)), r"4 dims.*\(3, 5, 5\)"),
        (lambda: F.conv2d(md.randn(1, 1, 2, 2), md.randn(1, 1, 3, 3)), r"does not fit"),
        (lambda: F.linear(md.randn(2, 3), md.randn(4, 5)), r"\(2, 3\).*\(4, 5\)"),
        (lambda: F.max_pool2d(md.randn(1, 1, 4, 4), 2, padding=2), r"at most half"),
        (lambda: F.mse_loss(md.randn(3), md.randn(3), reduction="avg"), r"'avg'"),
        (lambda: F.cross_entropy(md.randn(3, 4), md.tensor([0, 1])), r"\(3, 4\).*\(2,\)"),
        (lambda: F.cross_entropy(md.randn(2, 4), md.tensor([0, 4])), r"target 4.*4 classes"),
        (
            lambda: F.binary_cross_entropy_with_logits(md.randn(3), md.randn(3, 1)),
            r"\(3, 1\).*\(3,\)",
        ),
        (lambda: F.dropout(md.randn(3), p=1.5), r"between 0 and 1"),
    ],
)
def test_errors_name_the_shapes_and_values(call, match):
    with pytest.raises((ValueError, IndexError, TypeError), match=match):
        call()


@pytest.mark.gpu
@pytest.mark.skipif(not md.cuda.is_available(), reason="needs CUDA and CuPy")
def test_dropout_draws_its_mask_on_the_gpu_reproducibly():
    md.manual_seed(1)
    x = md.ones(100, 100, device="cuda", requires_grad=True)
    y = F.dropout(x, p=0.25)
    y.sum().backward()
    assert y.device == "cuda" and abs((y.numpy() == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())
    md.manual_seed(1)
    np.testing.assert_array_equal(
        F.dropout(md.ones(100, 100, device="cuda"), 0.25).numpy(), y.numpy()
    )
