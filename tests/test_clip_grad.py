"""clip_grad_norm_: PyTorch's total norm and scaling, gradients replaced, never mutated."""

import numpy as np
import pytest

import minideep as md
from minideep.nn.utils import clip_grad_norm_

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def _params_with_grads(scale: float, dtype=md.float64):
    rng = np.random.default_rng(0)
    params = []
    for shape in SHAPES:
        p = md.nn.Parameter(md.zeros(*shape, dtype=dtype))
        p.grad = md.tensor(rng.standard_normal(shape) * scale, dtype=dtype)
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_total_norm_and_clipped_gradients_match_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    params = _params_with_grads(scale=2.0)
    t_params = []
    for p in params:
        t = torch.zeros(p.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.tensor(p.grad.numpy().copy())
        t_params.append(t)
    t_total = torch.nn.utils.clip_grad_norm_(t_params, max_norm, norm_type)
    total = clip_grad_norm_(params, max_norm, norm_type)
    np.testing.assert_allclose(total.item(), t_total.item(), rtol=1e-12)
    for p, t in zip(params, t_params):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_gradients_under_the_limit_are_left_alone():
    params = _params_with_grads(scale=1e-3)
    before = [p.grad.data for p in params]
    clip_grad_norm_(params, max_norm=10.0)
    assert all(p.grad.data is b for p, b in zip(params, before))


def test_clipped_gradients_have_the_maximum_norm():
    params = _params_with_grads(scale=5.0)
    total = clip_grad_norm_(params, max_norm=1.0)
    assert total.item() > 1.0
    joint = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in params))
    np.testing.assert_allclose(joint, 1.0, rtol=1e-5)


def test_a_shared_gradient_array_is_not_modified_in_place():
    params = _params_with_grads(scale=5.0)
    shared = params[0].grad.data
    original = shared.copy()
    other = md.Tensor(shared)  # another tensor holding the same gradient array
    clip_grad_norm_(params, max_norm=1.0)
    assert np.array_equal(other.data, original)
    assert not np.array_equal(params[0].grad.numpy(), original)


def test_parameters_without_gradient_are_skipped_and_a_single_tensor_is_accepted():
    params = _params_with_grads(scale=1.0)
    params[1].grad = None
    total = clip_grad_norm_(params, max_norm=1e3)
    expected = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in params if p.grad is not None))
    np.testing.assert_allclose(total.item(), expected, rtol=1e-12)
    single = clip_grad_norm_(params[0], max_norm=1e3)
    np.testing.assert_allclose(single.item(), np.linalg.norm(params[0].grad.numpy()))


def test_no_gradients_give_a_zero_norm():
    p = md.nn.Parameter(md.zeros(3))
    assert clip_grad_norm_([p], 1.0).item() == 0.0


def test_total_norm_keeps_the_gradients_dtype():
    assert clip_grad_norm_(_params_with_grads(1.0, md.float32), 1.0).dtype == md.float32
    assert clip_grad_norm_(_params_with_grads(1.0, md.float64), 1.0).dtype == md.float64


def test_non_finite_norm_raises_when_asked():
    params = _params_with_grads(scale=1.0)
    params[0].grad = md.tensor(np.full((3, 4), np.inf), dtype=md.float64)
    with pytest.raises(RuntimeError, match="inf"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


def test_clipping_tames_an_exploding_rnn_gradient():
    md.manual_seed(0)
    rnn = md.nn.RNN(3, 8, nonlinearity="relu")
    for p in rnn.parameters():
        p.data = p.data * 4
    out, _ = rnn(md.randn(30, 2, 3))
    out.sum().backward()
    total = clip_grad_norm_(rnn.parameters(), max_norm=1.0)
    assert total.item() > 1.0
    clipped = np.sqrt(sum((p.grad.numpy().astype(np.float64) ** 2).sum() for p in rnn.parameters()))
    np.testing.assert_allclose(clipped, 1.0, rtol=1e-4)
