"""Module hooks and traversal, with PyTorch's semantics: forward pre-hooks, forward hooks,
full backward hooks, their handles, named_modules, apply and requires_grad_.

Where torch is installed, the same model is built in both (float64, copied weights) and
the hooks' calls and the values they see are compared."""

import warnings

import numpy as np
import pytest

import minideep as md
from minideep import nn
from minideep.nn.hooks import BackwardHookFunction


def _as_numpy(value):
    """A hook argument as a plain value: arrays for tensors of either library."""
    if value is None or isinstance(value, (int, float)):
        return value
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().numpy()
    return value.numpy()


def _record(calls: list, name: str):
    """Hooks of the three kinds that append (name, kind, values...) to ``calls``."""

    def pre(module, args):
        calls.append((name, "pre", [_as_numpy(a) for a in args]))

    def forward(module, args, output):
        outputs = output if isinstance(output, tuple) else (output,)
        calls.append((name, "forward", [_as_numpy(o) for o in outputs]))

    def backward(module, grad_input, grad_output):
        calls.append(
            (
                name,
                "backward",
                [_as_numpy(g) for g in grad_input],
                [_as_numpy(g) for g in grad_output],
            )
        )

    return pre, forward, backward


def _hook_everything(model, calls: list) -> None:
    for name, module in model.named_modules():
        pre, forward, backward = _record(calls, name or "model")
        module.register_forward_pre_hook(pre)
        module.register_forward_hook(forward)
        module.register_full_backward_hook(backward)


def _assert_same_calls(ours: list, theirs: list) -> None:
    assert [c[:2] for c in ours] == [c[:2] for c in theirs]
    for a, b in zip(ours, theirs):
        for values_a, values_b in zip(a[2:], b[2:]):
            assert len(values_a) == len(values_b), a[:2]
            for x, y in zip(values_a, values_b):
                if y is None:
                    assert x is None, a[:2]
                else:
                    assert x is not None, a[:2]
                    np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=str(a[:2]))


def _torch_copy(torch, ours, theirs):
    """``theirs`` in float64 with ``ours``' weights."""
    theirs = theirs.double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return theirs


def _run_both(torch, ours, theirs, inputs, requires_grad, upstream_seed=0):
    """Hook every module of both models, run forward and a random-upstream backward;
    returns both call lists and both models' outputs."""
    rng = np.random.default_rng(upstream_seed)
    results = []
    for model, to_tensor in (
        (ours, lambda a, g: md.tensor(a, dtype=md.float64, requires_grad=g)),
        (theirs, lambda a, g: torch.tensor(a, dtype=torch.float64, requires_grad=g)),
    ):
        calls = []
        _hook_everything(model, calls)
        args = [to_tensor(a, g) for a, g in zip(inputs, requires_grad)]
        output = model(*args)
        results.append((calls, output, args))
    upstream = rng.standard_normal(tuple(results[0][1].shape))
    results[0][1].backward(md.tensor(upstream, dtype=md.float64))
    results[1][1].backward(torch.from_numpy(upstream))
    return results


# ------------------------------------------------------------------------ against PyTorch


def test_linear_hooks_see_what_pytorchs_see():
    torch = pytest.importorskip("torch")
    ours = nn.Linear(3, 2).double()
    theirs = _torch_copy(torch, ours, torch.nn.Linear(3, 2))
    x = np.random.default_rng(1).standard_normal((4, 3))
    (ours_calls, _, ours_args), (theirs_calls, _, theirs_args) = _run_both(
        torch, ours, theirs, [x], [True]
    )
    assert [c[:2] for c in ours_calls] == [
        ("model", "pre"),
        ("model", "forward"),
        ("model", "backward"),
    ]
    _assert_same_calls(ours_calls, theirs_calls)
    grad_input = ours_calls[-1][2]
    assert grad_input[0].shape == (4, 3)
    np.testing.assert_allclose(ours_args[0].grad.numpy(), theirs_args[0].grad.numpy())


def test_sequential_conv_relu_linear_calls_hooks_in_pytorchs_order_with_its_values():
    torch = pytest.importorskip("torch")
    md.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Linear(5, 4)).double()
    theirs = _torch_copy(
        torch,
        ours,
        torch.nn.Sequential(
            torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Linear(5, 4)
        ),
    )
    x = np.random.default_rng(2).standard_normal((2, 2, 4, 5))
    (ours_calls, _, _), (theirs_calls, _, _) = _run_both(torch, ours, theirs, [x], [True])
    assert [c[:2] for c in ours_calls][-4:] == [
        ("2", "backward"),
        ("1", "backward"),
        ("0", "backward"),
        ("model", "backward"),
    ]
    _assert_same_calls(ours_calls, theirs_calls)


def test_input_that_does_not_require_grad_fires_the_hook_with_grad_input_none():
    torch = pytest.importorskip("torch")
    md.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Linear(5, 4)).double()
    theirs = _torch_copy(
        torch,
        ours,
        torch.nn.Sequential(
            torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Linear(5, 4)
        ),
    )
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5))
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        (ours_calls, _, _), (theirs_calls, _, _) = _run_both(torch, ours, theirs, [x], [False])
    _assert_same_calls(ours_calls, theirs_calls)
    backward = {c[0]: c for c in ours_calls if c[1] == "backward"}
    assert backward["0"][2] == [None] and backward["model"][2] == [None]
    assert backward["1"][2][0] is not None


class _Mix(nn.Module):
    """(a, b, scale) -> (tanh(a @ w) * b * scale, 7): two tensor inputs, a float, and a
    tuple output with a non-tensor entry."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3, bias=False)

    def forward(self, a, b, scale):
        return (self.linear(a).tanh() * b * scale).sum(-1), 7


def _mix_pair(torch):
    class TorchMix(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 3, bias=False)

        forward = _Mix.forward

    ours = _Mix().double()
    return ours, _torch_copy(torch, ours, TorchMix())


@pytest.mark.parametrize("a_grad, b_grad", [(True, False), (False, True), (True, True)])
def test_two_inputs_one_without_grad_give_pytorchs_grad_input(a_grad, b_grad):
    torch = pytest.importorskip("torch")
    ours, theirs = _mix_pair(torch)
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    seen = []
    for model, lib in ((ours, md), (theirs, torch)):
        calls = []
        model.register_full_backward_hook(_record(calls, "mix")[2])
        args = (
            lib.tensor(a, dtype=lib.float64, requires_grad=a_grad),
            lib.tensor(b, dtype=lib.float64, requires_grad=b_grad),
            0.5,
        )
        y, seven = model(*args)
        assert seven == 7
        y.sum().backward()
        seen.append(calls)
    _assert_same_calls(*seen)
    grad_input, grad_output = seen[0][0][2:]
    assert len(grad_input) == 3 and grad_input[2] is None  # the float argument
    for g, needs_grad in zip(grad_input, (a_grad, b_grad)):
        if not needs_grad:  # PyTorch's rule: zeros for a Tensor input that needs no grad
            np.testing.assert_array_equal(g, np.zeros((2, 3)))
    assert grad_output[1] is None  # the non-tensor output


# ------------------------------------------------------------------------ replacing values


def test_forward_pre_hook_replaces_args_and_a_single_value_is_wrapped():
    layer = nn.Linear(2, 2)
    x = md.randn(3, 2)
    layer.register_forward_pre_hook(lambda module, args: args[0] * 0)  # not a tuple
    seen = []
    layer.register_forward_hook(lambda module, args, output: seen.append(args))
    np.testing.assert_allclose(layer(x).numpy(), np.broadcast_to(layer.bias.numpy(), (3, 2)))
    assert isinstance(seen[0], tuple) and len(seen[0]) == 1


def test_forward_pre_hook_with_kwargs_replaces_args_and_kwargs():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    module = Scale()
    module.register_forward_pre_hook(
        lambda m, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True
    )
    np.testing.assert_allclose(module(md.ones(2)).numpy(), [3.0, 3.0])


def test_forward_hook_replaces_output():
    layer = nn.Linear(2, 2)
    layer.register_forward_hook(lambda module, args, output: output * 0 + 1)
    np.testing.assert_array_equal(layer(md.randn(3, 2)).numpy(), np.ones((3, 2)))


def test_full_backward_hook_replaces_grad_input_like_pytorch():
    torch = pytest.importorskip("torch")
    ours, theirs = _mix_pair(torch)
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    grads = []
    for model, lib in ((ours, md), (theirs, torch)):
        model.register_full_backward_hook(lambda m, gi, go: (gi[0] * 2, None, None))
        ta = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        tb = lib.tensor(b, dtype=lib.float64, requires_grad=True)
        model(ta, tb, 1.0)[0].sum().backward()
        grads.append((ta.grad, tb.grad, model.linear.weight.grad))
    (oa, ob, ow), (ta, tb, tw) = grads
    assert ob is None and tb is None  # the hook cut b's gradient
    np.testing.assert_allclose(oa.numpy(), ta.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ow.numpy(), tw.numpy(), rtol=1e-12)  # unaffected


def test_later_backward_hooks_see_the_replaced_grad_input():
    layer = nn.Linear(2, 1)
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 10,))
    layer.register_full_backward_hook(lambda m, gi, go: seen.append(gi[0].numpy()))
    x = md.randn(3, 2, requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(seen[0], x.grad.numpy())
    np.testing.assert_allclose(seen[0], np.tile(10 * layer.weight.numpy(), (3, 1)), rtol=1e-6)


@pytest.mark.parametrize(
    "result, message",
    [((None, None), "invalid number of grad_input"), ((md.zeros(5),), "shape \\(5,\\)")],
    ids=["wrong count", "wrong shape"],
)
def test_backward_hook_returning_a_wrong_grad_input_raises(result, message):
    layer = nn.Linear(2, 1)
    layer.register_full_backward_hook(lambda m, gi, go: result)
    with pytest.raises(RuntimeError, match=message):
        layer(md.randn(3, 2, requires_grad=True)).sum().backward()


def test_backward_hook_without_input_grads_must_return_none():
    layer = nn.Linear(2, 1)
    layer.register_full_backward_hook(lambda m, gi, go: (md.zeros(3, 2),))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="no input requires gradient"):
            layer(md.randn(3, 2)).sum().backward()


# ------------------------------------------------------------------------ handles and scope


@pytest.mark.parametrize("kind", ["pre", "forward", "backward"])
def test_removed_hook_no_longer_runs(kind):
    layer = nn.Linear(2, 1)
    calls = []
    hooks = dict(zip(["pre", "forward", "backward"], _record(calls, "layer")))
    register = {
        "pre": layer.register_forward_pre_hook,
        "forward": layer.register_forward_hook,
        "backward": layer.register_full_backward_hook,
    }[kind]
    handle = register(hooks[kind])
    layer(md.randn(3, 2, requires_grad=True)).sum().backward()
    assert [c[1] for c in calls] == [kind]
    handle.remove()
    handle.remove()  # a second remove is harmless
    layer(md.randn(3, 2, requires_grad=True)).sum().backward()
    assert [c[1] for c in calls] == [kind]


def test_handle_as_context_manager_removes_the_hook():
    layer = nn.Linear(2, 1)
    calls = []
    with layer.register_forward_hook(lambda m, a, o: calls.append(1)):
        layer(md.randn(1, 2))
    layer(md.randn(1, 2))
    assert calls == [1]


def test_module_without_hooks_adds_no_node_to_the_graph():
    layer = nn.Linear(2, 1)
    layer.register_full_backward_hook(lambda m, gi, go: None).remove()
    y = layer(md.randn(3, 2, requires_grad=True))
    assert not isinstance(y._ctx, BackwardHookFunction)


def test_hooks_run_in_registration_order_and_prepend_goes_first():
    layer = nn.Linear(2, 1)
    order = []
    layer.register_forward_hook(lambda m, a, o: order.append("first"))
    layer.register_forward_hook(lambda m, a, o: order.append("second"))
    layer.register_forward_hook(lambda m, a, o: order.append("prepended"), prepend=True)
    layer.register_full_backward_hook(lambda m, gi, go: order.append("b1"))
    layer.register_full_backward_hook(lambda m, gi, go: order.append("b0"), prepend=True)
    layer(md.randn(1, 2, requires_grad=True)).sum().backward()
    assert order == ["prepended", "first", "second", "b0", "b1"]


def test_hooks_on_a_container_do_not_fire_for_its_children():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    calls = []
    for hook, register in zip(
        _record(calls, "model"),
        [
            model.register_forward_pre_hook,
            model.register_forward_hook,
            model.register_full_backward_hook,
        ],
    ):
        register(hook)
    model(md.randn(4, 2, requires_grad=True)).sum().backward()
    assert [c[:2] for c in calls] == [
        ("model", "pre"),
        ("model", "forward"),
        ("model", "backward"),
    ]


def test_backward_hooks_need_a_recorded_graph():
    layer = nn.Linear(2, 1)
    calls = []
    pre, forward, backward = _record(calls, "layer")
    layer.register_forward_hook(forward)
    layer.register_full_backward_hook(backward)
    with md.no_grad():
        y = layer(md.randn(3, 2, requires_grad=True))
    assert not y.requires_grad
    assert [c[1] for c in calls] == ["forward"]


def test_backward_hook_fires_once_per_backward_of_a_call():
    layer = nn.Linear(2, 1)
    calls = []
    layer.register_full_backward_hook(_record(calls, "layer")[2])
    x = md.randn(3, 2, requires_grad=True)
    y = layer(x)
    (y * 2 + y).sum().backward()  # the output used twice: one grad_output, their sum
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0][3][0], np.full((3, 1), 3.0))


def test_output_that_is_not_a_tensor_or_tuple_warns_and_the_hook_does_not_fire():
    class ListOut(nn.Module):
        def forward(self, x):
            return [x * 2]

    module = ListOut()
    calls = []
    module.register_full_backward_hook(_record(calls, "m")[2])
    with pytest.warns(UserWarning, match="module output should be a Tensor or a tuple"):
        out = module(md.randn(2, requires_grad=True))
    out[0].sum().backward()
    assert calls == []


def test_backward_hook_sees_tensors_when_the_graph_of_the_gradient_is_built():
    class Cube(nn.Module):
        def forward(self, x):
            return (x * x * x).sum()

    module = Cube()
    calls = []
    module.register_full_backward_hook(lambda m, gi, go: calls.append(gi[0]))
    x = md.randn(3, dtype=md.float64, requires_grad=True)
    (g,) = md.autograd.grad(module(x), x, create_graph=True)
    (gg,) = md.autograd.grad(g.sum(), x)
    assert len(calls) == 1 and isinstance(calls[0], md.Tensor)
    np.testing.assert_allclose(gg.numpy(), 6 * x.numpy())


# ------------------------------------------------------------------------ traversal


def _shared_tree(lib=nn):
    """A tree in which one Linear appears three times, twice nested (``lib``: minideep's
    nn or torch.nn)."""
    root = lib.Module()
    root.shared = lib.Linear(2, 2)
    root.block = lib.Sequential(lib.Linear(2, 2), root.shared, lib.ReLU())
    root.twice = lib.Sequential(root.shared, root.shared)
    return root


@pytest.mark.parametrize("remove_duplicate", [True, False])
@pytest.mark.parametrize("prefix", ["", "root"])
def test_named_modules_matches_pytorch(prefix, remove_duplicate):
    torch = pytest.importorskip("torch")
    ours = [
        n for n, _ in _shared_tree().named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
    ]
    theirs = [
        n
        for n, _ in _shared_tree(torch.nn).named_modules(
            prefix=prefix, remove_duplicate=remove_duplicate
        )
    ]
    assert ours == theirs


def test_named_modules_skips_the_modules_in_memo():
    model = _shared_tree()
    names = [n for n, _ in model.named_modules(memo={model.block})]
    assert "block" not in names and "block.0" not in names and "shared" in names


def test_apply_visits_children_first_like_pytorch():
    torch = pytest.importorskip("torch")
    ours, theirs = [], []
    model = _shared_tree()
    names = {id(m): n for n, m in model.named_modules()}
    model.apply(lambda m: ours.append(names[id(m)]))
    torch_model = _shared_tree(torch.nn)
    torch_names = {id(m): n for n, m in torch_model.named_modules()}
    torch_model.apply(lambda m: theirs.append(torch_names[id(m)]))
    assert ours == theirs
    assert ours[-1] == ""  # the module itself comes last


def test_requires_grad_false_freezes_every_parameter_and_returns_the_module():
    model = _shared_tree()
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())
