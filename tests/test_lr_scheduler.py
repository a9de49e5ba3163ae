"""Learning-rate schedulers: PyTorch's values, closed forms, state dicts."""

import math

import numpy as np
import pytest

import minideep as md
from minideep.nn import Parameter
from minideep.optim import lr_scheduler

SCHEDULERS = [
    ("StepLR", dict(step_size=3)),
    ("StepLR", dict(step_size=4, gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=10)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
    ("CosineAnnealingLR", dict(T_max=1)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in SCHEDULERS]
STEPS = 30


def _optimizer(lrs=(0.1, 0.4)):
    groups = [{"params": [Parameter(md.tensor([1.0]))], "lr": lr} for lr in lrs]
    return md.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def _lr_sequence(scheduler, steps=STEPS):
    seq = [scheduler.get_last_lr()]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        seq.append(scheduler.get_last_lr())
    return np.array(seq)


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=IDS)
def test_matches_pytorch_over_30_steps(name, kwargs):
    torch = pytest.importorskip("torch")
    ours = _lr_sequence(getattr(lr_scheduler, name)(_optimizer(), **kwargs))

    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in (0.1, 0.4)]
    t_opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kwargs)
    theirs = [t_sched.get_last_lr()]
    for _ in range(STEPS):
        t_opt.step()
        t_sched.step()
        theirs.append(t_sched.get_last_lr())
    np.testing.assert_allclose(ours, np.array(theirs), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=IDS)
def test_recursion_follows_the_closed_form(name, kwargs):
    scheduler = getattr(lr_scheduler, name)(_optimizer(), **kwargs)
    for _ in range(STEPS):
        scheduler.step()
        np.testing.assert_allclose(
            scheduler.get_last_lr(), scheduler._get_closed_form_lr(), rtol=1e-9, atol=1e-12
        )


def test_step_lr_values():
    seq = _lr_sequence(lr_scheduler.StepLR(_optimizer((1.0,)), step_size=2, gamma=0.5), 6)
    np.testing.assert_allclose(seq[:, 0], [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125])


def test_exponential_lr_values():
    seq = _lr_sequence(lr_scheduler.ExponentialLR(_optimizer((1.0,)), gamma=0.5), 3)
    np.testing.assert_allclose(seq[:, 0], [1, 0.5, 0.25, 0.125])


def test_cosine_annealing_values_reach_eta_min_at_t_max_and_come_back():
    seq = _lr_sequence(lr_scheduler.CosineAnnealingLR(_optimizer((1.0,)), 4, eta_min=0.2), 8)
    expected = [0.2 + 0.8 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(9)]
    np.testing.assert_allclose(seq[:, 0], expected, atol=1e-12)
    assert seq[4, 0] == pytest.approx(0.2) and seq[8, 0] == pytest.approx(1.0)


def test_scheduler_writes_the_rate_into_every_param_group():
    opt = _optimizer((0.1, 0.4))
    scheduler = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    scheduler.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.2])
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.4]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=IDS)
def test_state_dict_round_trip_continues_identically(name, kwargs):
    cls = getattr(lr_scheduler, name)
    opt_a = _optimizer()
    a = cls(opt_a, **kwargs)
    for _ in range(5):
        a.step()
    opt_b = _optimizer()
    opt_b.load_state_dict(opt_a.state_dict())
    b = cls(opt_b, **kwargs)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(_lr_sequence(a, 10), _lr_sequence(b, 10))


def test_state_dict_leaves_out_the_optimizer():
    scheduler = lr_scheduler.ExponentialLR(_optimizer(), gamma=0.9)
    state = scheduler.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 0 and state["gamma"] == 0.9


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(_optimizer(), step_size=2, last_epoch=4)


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
