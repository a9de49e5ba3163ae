"""Optimisers: PyTorch's update formulas, parameter groups, state dicts."""

import math

import numpy as np
import pytest

import minideep as md
from minideep.nn import Parameter

SHAPES = [(3, 4), (5,)]


def _grad(theta: np.ndarray) -> np.ndarray:
    """The gradient of a fixed non-quadratic function, so every step sees a new gradient."""
    return theta**3 - theta + 0.5 * np.sin(3 * theta)


def _initial(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in SHAPES]


def _md_params(arrays):
    return [Parameter(md.tensor(a.copy(), dtype=md.float64)) for a in arrays]


def _set_grads(params):
    for p in params:
        p.grad = md.Tensor(_grad(p.data))


def _run_md(name, kwargs, steps, arrays):
    params = _md_params(arrays)
    opt = getattr(md.optim, name)(params, **kwargs)
    for _ in range(steps):
        _set_grads(params)
        opt.step()
    return [p.data for p in params]


CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, weight_decay=0.1, momentum=0.5, dampening=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-4)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CONFIGS]


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_pytorch_over_25_steps(name, kwargs):
    torch = pytest.importorskip("torch")
    arrays = _initial()
    ours = _run_md(name, kwargs, 25, arrays)

    params = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    opt = getattr(torch.optim, name)(params, **kwargs)
    for _ in range(25):
        for p in params:
            p.grad = torch.from_numpy(_grad(p.detach().numpy()))
        opt.step()
    for mine, theirs in zip(ours, params):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------ hand-computed first steps
def _one_step(name, kwargs, steps=1):
    arrays = _initial()
    return arrays, _run_md(name, kwargs, steps, arrays)


def test_sgd_first_step_is_theta_minus_lr_grad():
    (theta, _), (new, _) = _one_step("SGD", dict(lr=0.1))
    np.testing.assert_allclose(new, theta - 0.1 * _grad(theta), rtol=1e-12)


def test_sgd_momentum_second_step_uses_the_buffer():
    (theta, _), (new, _) = _one_step("SGD", dict(lr=0.1, momentum=0.9, dampening=0.25), steps=2)
    g0 = _grad(theta)
    theta1 = theta - 0.1 * g0  # first step: buffer = g0
    buf = 0.9 * g0 + 0.75 * _grad(theta1)
    np.testing.assert_allclose(new, theta1 - 0.1 * buf, rtol=1e-12)


def test_sgd_nesterov_first_step_looks_ahead():
    (theta, _), (new, _) = _one_step("SGD", dict(lr=0.1, momentum=0.9, nesterov=True))
    g = _grad(theta)
    np.testing.assert_allclose(new, theta - 0.1 * (g + 0.9 * g), rtol=1e-12)


def test_sgd_weight_decay_adds_l2_gradient():
    (theta, _), (new, _) = _one_step("SGD", dict(lr=0.1, weight_decay=0.01))
    np.testing.assert_allclose(new, theta - 0.1 * (_grad(theta) + 0.01 * theta), rtol=1e-12)


def test_adam_first_step_moves_each_weight_by_about_lr():
    (theta, _), (new, _) = _one_step("Adam", dict(lr=0.01))
    g = _grad(theta)
    # m̂ = g and v̂ = g² after bias correction, so the step is lr * g / (|g| + eps).
    np.testing.assert_allclose(new, theta - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_adam_second_step_bias_correction_and_eps_placement():
    (theta, _), (new, _) = _one_step("Adam", dict(lr=0.01, betas=(0.9, 0.99), eps=0.1), steps=2)
    g0 = _grad(theta)
    theta1 = theta - 0.01 * g0 / (np.abs(g0) + 0.1)
    g1 = _grad(theta1)
    m = 0.9 * 0.1 * g0 + 0.1 * g1
    v = 0.99 * 0.01 * g0**2 + 0.01 * g1**2
    expected = theta1 - 0.01 / (1 - 0.9**2) * m / (np.sqrt(v) / math.sqrt(1 - 0.99**2) + 0.1)
    np.testing.assert_allclose(new, expected, rtol=1e-12)


def test_adamw_first_step_decays_weights_directly():
    (theta, _), (new, _) = _one_step("AdamW", dict(lr=0.01, weight_decay=0.5))
    g = _grad(theta)
    expected = theta * (1 - 0.01 * 0.5) - 0.01 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(new, expected, rtol=1e-12)


def test_rmsprop_first_step():
    (theta, _), (new, _) = _one_step("RMSprop", dict(lr=0.01, alpha=0.9))
    g = _grad(theta)
    expected = theta - 0.01 * g / (np.sqrt(0.1 * g**2) + 1e-8)
    np.testing.assert_allclose(new, expected, rtol=1e-12)


def test_rmsprop_centered_first_step_divides_by_running_std():
    (theta, _), (new, _) = _one_step("RMSprop", dict(lr=0.01, alpha=0.9, centered=True))
    g = _grad(theta)
    # s - ḡ² = 0.1 g² - 0.01 g² = 0.09 g²
    expected = theta - 0.01 * g / (np.sqrt(0.09 * g**2) + 1e-8)
    np.testing.assert_allclose(new, expected, rtol=1e-12)


# ------------------------------------------------------------------ behaviour
def _quadratic_setup(opt_cls=md.optim.SGD, **kwargs):
    p = Parameter(md.tensor([1.0, -2.0], dtype=md.float64))
    return p, opt_cls([p], **kwargs)


def test_changing_param_group_lr_takes_effect_on_next_step():
    p, opt = _quadratic_setup(lr=0.1)
    p.grad = md.tensor([1.0, 1.0], dtype=md.float64)
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.6, -2.0 - 0.6])


def test_param_groups_given_as_dicts_keep_their_own_hyperparameters():
    a = Parameter(md.tensor([1.0], dtype=md.float64))
    b = Parameter(md.tensor([1.0], dtype=md.float64))
    opt = md.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    a.grad = b.grad = md.tensor([1.0], dtype=md.float64)
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5])


def test_a_parameter_in_two_groups_is_refused():
    p = Parameter(md.tensor([1.0]))
    with pytest.raises(ValueError, match="more than one parameter group"):
        md.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_zero_grad_sets_gradients_to_none():
    p, opt = _quadratic_setup(lr=0.1)
    p.grad = md.tensor([1.0, 1.0], dtype=md.float64)
    opt.zero_grad()
    assert p.grad is None


def test_parameters_without_gradient_are_skipped():
    a = Parameter(md.tensor([1.0], dtype=md.float64))
    b = Parameter(md.tensor([2.0], dtype=md.float64))
    opt = md.optim.Adam([a, b], lr=0.1)
    a.grad = md.tensor([1.0], dtype=md.float64)
    opt.step()
    assert b.data[0] == 2.0 and b not in opt.state and a in opt.state


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_step_never_modifies_the_gradient_array(name, kwargs):
    params = _md_params(_initial())
    opt = getattr(md.optim, name)(params, **kwargs)
    for _ in range(2):
        _set_grads(params)
        before = [p.grad.data.copy() for p in params]
        opt.step()
        for p, g in zip(params, before):
            np.testing.assert_array_equal(p.grad.data, g)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_float32_parameters_stay_float32(name):
    p = Parameter(md.tensor([1.0, 2.0]))
    opt = getattr(md.optim, name)([p], lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    for _ in range(2):
        p.grad = md.tensor([0.5, -0.5])
        opt.step()
    assert p.dtype == md.float32
    assert all(v.dtype == md.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))


def test_step_calls_the_closure_and_returns_its_loss():
    p = Parameter(md.tensor([3.0], dtype=md.float64))
    opt = md.optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(p.data, [3.0 - 0.25 * 6.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda p: md.optim.SGD([p], lr=-1),
        lambda p: md.optim.SGD([p], lr=0.1, nesterov=True),
        lambda p: md.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
        lambda p: md.optim.Adam([p], betas=(1.0, 0.999)),
        lambda p: md.optim.RMSprop([p], eps=-1),
    ],
)
def test_invalid_hyperparameters_raise(make):
    with pytest.raises(ValueError):
        make(Parameter(md.tensor([1.0])))


def test_empty_parameter_list_raises():
    with pytest.raises(ValueError, match="empty"):
        md.optim.SGD([], lr=0.1)


# ------------------------------------------------------------------ state dicts
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_state_dict_round_trip_continues_identically(name, kwargs):
    params = _md_params(_initial())
    opt = getattr(md.optim, name)(params, **kwargs)
    for _ in range(3):
        _set_grads(params)
        opt.step()
    saved = opt.state_dict()

    clones = _md_params([p.data for p in params])
    restored = getattr(md.optim, name)(clones, lr=123.0)  # hyper-parameters come from saved
    restored.load_state_dict(saved)
    assert restored.param_groups[0]["lr"] == kwargs["lr"]
    for _ in range(4):
        _set_grads(params)
        opt.step()
        _set_grads(clones)
        restored.step()
    for p, q in zip(params, clones):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_has_pytorchs_layout_and_holds_copies():
    params = _md_params(_initial())
    opt = md.optim.Adam(params, lr=0.01)
    _set_grads(params)
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sd["param_groups"][0]["params"] == [0, 1]
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["step"] == 1
    snapshot = sd["state"][0]["exp_avg"].copy()
    _set_grads(params)
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], snapshot)


def test_load_state_dict_with_other_group_sizes_raises():
    opt = md.optim.SGD(_md_params(_initial()), lr=0.1)
    other = md.optim.SGD(_md_params(_initial())[:1], lr=0.1)
    with pytest.raises(ValueError, match="2 parameters"):
        other.load_state_dict(opt.state_dict())


@pytest.mark.gpu
def test_state_lives_on_the_parameters_device():
    if not md.cuda.is_available():
        pytest.skip("needs CUDA")
    p = Parameter(md.tensor([1.0, 2.0], device="cuda"))
    opt = md.optim.Adam([p], lr=0.1)
    p.grad = md.tensor([1.0, 1.0], device="cuda")
    opt.step()
    assert md.backend.device_of(opt.state[p]["exp_avg"]) == "cuda"
    cpu_p = Parameter(md.tensor([1.0, 2.0]))
    cpu_opt = md.optim.Adam([cpu_p], lr=0.1)
    cpu_opt.load_state_dict(opt.state_dict())
    assert md.backend.device_of(cpu_opt.state[cpu_p]["exp_avg"]) == "cpu"


@pytest.mark.gpu
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_cuda_updates_match_cpu_over_25_steps(name, kwargs):
    if not md.cuda.is_available():
        pytest.skip("needs CUDA")
    arrays = _initial()
    cpu = _run_md(name, kwargs, 25, arrays)
    params = [Parameter(md.tensor(a.copy(), dtype=md.float64, device="cuda")) for a in arrays]
    opt = getattr(md.optim, name)(params, **kwargs)
    for _ in range(25):
        for p in params:  # the gradient is computed on the host, so only the update differs
            p.grad = md.tensor(_grad(p.numpy()), dtype=md.float64, device="cuda")
        opt.step()
    for p, expected in zip(params, cpu):
        assert p.dtype == md.float64
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-12, atol=1e-12)
