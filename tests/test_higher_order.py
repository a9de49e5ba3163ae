"""Gradients of gradients: every built-in op passes a second-order check, and
``create_graph``, ``autograd.grad``, hooks and the functional transforms behave as
PyTorch's (compared with it, float64 and copied weights, where it is installed)."""

import numpy as np
import pytest

import minideep as md
from minideep import nn
from minideep.autograd import BUILTIN_FUNCTIONS
from minideep.autograd import functional as AF
from minideep.checks import all_cases, functions_used, run_second_order
from minideep.nn import functional as F

CASES = all_cases()

# Built-in Functions that are differentiable once only, on purpose (none so far). A
# Function listed here must say ``differentiable_backward = False``; any other must pass
# a second-order check.
ONCE_DIFFERENTIABLE: set = set()


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_second_derivatives_match_finite_differences(case, fast_paths):
    with md.fast_paths(fast_paths):
        run_second_order(case)


def test_every_builtin_function_has_a_second_order_check_or_is_marked_once_differentiable():
    covered = set()
    for case in CASES:
        covered |= functions_used(case)
    missing = sorted(
        f.__name__
        for f in BUILTIN_FUNCTIONS
        if f not in covered and f.__name__ not in ONCE_DIFFERENTIABLE
    )
    assert not missing, f"ops without a second-order case in minideep/checks/: {missing}"
    for f in BUILTIN_FUNCTIONS:
        assert f.differentiable_backward == (f.__name__ not in ONCE_DIFFERENTIABLE), f


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class Cube(md.autograd.Function):
        differentiable_backward = True

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * grad * x.detach() ** 2 if isinstance(x, md.Tensor) else 3 * grad * x**2

    x = md.randn(4, dtype=md.float64, requires_grad=True)
    assert md.gradcheck(Cube.apply, (x,))
    with pytest.raises(md.GradcheckError, match="input 0"):
        md.gradgradcheck(Cube.apply, (x,))
    assert md.gradgradcheck(Cube.apply, (x,), raise_exception=False) is False


def test_a_custom_function_with_an_array_backward_is_differentiable_once_and_says_so():
    class Square(md.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            assert isinstance(x, np.ndarray)  # raw arrays, even when building a graph
            return 2 * x * grad

    x = md.randn(3, dtype=md.float64, requires_grad=True)
    (g,) = md.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), 2 * x.numpy())
    with pytest.raises(RuntimeError, match="Square is differentiable once only"):
        g.sum().backward()


def test_a_custom_function_written_for_tensors_is_twice_differentiable():
    class Square(md.autograd.Function):
        differentiable_backward = True

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = md.randn(3, dtype=md.float64, requires_grad=True)
    assert md.gradgradcheck(Square.apply, (x,))
    (g,) = md.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
    (h,) = md.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), np.full(3, 2.0))


# --------------------------------------------------------------- grad and backward


def test_grad_leaves_dot_grad_alone_and_runs_only_what_it_needs():
    a = md.randn(3, dtype=md.float64, requires_grad=True)
    b = md.randn(3, dtype=md.float64, requires_grad=True)
    y = (a * b).sum()
    (ga,) = md.autograd.grad(y, a)
    np.testing.assert_allclose(ga.numpy(), b.numpy())
    assert a.grad is None and b.grad is None
    assert not ga.requires_grad


def test_grad_of_a_non_leaf_and_of_several_inputs():
    a = md.randn(4, dtype=md.float64, requires_grad=True)
    h = a.exp()
    y = (h * a).sum()
    gh, ga = md.autograd.grad(y, [h, a])
    np.testing.assert_allclose(gh.numpy(), a.numpy())
    np.testing.assert_allclose(ga.numpy(), np.exp(a.numpy()) * (1 + a.numpy()))


def test_an_unused_input_is_an_error_unless_allowed():
    a = md.randn(3, requires_grad=True)
    b = md.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="input 1 .* was not used"):
        md.autograd.grad((a * 2).sum(), [a, b])
    ga, gb = md.autograd.grad((a * 2).sum(), [a, b], allow_unused=True)
    assert gb is None
    _, gb = md.autograd.grad((a * 2).sum(), [a, b], allow_unused=True, materialize_grads=True)
    np.testing.assert_array_equal(gb.numpy(), np.zeros(3))


def test_grad_needs_inputs_that_require_grad():
    a = md.randn(3)
    with pytest.raises(RuntimeError, match="input 0 does not require grad"):
        md.autograd.grad((a * 2).sum(), a)


def test_a_second_backward_through_a_freed_graph_is_an_error_unless_retained():
    a = md.randn(3, requires_grad=True)
    y = (a.exp() * a).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    z = (a.exp() * a).sum()
    a.grad = None
    z.backward(retain_graph=True)
    first = a.grad.numpy().copy()
    z.backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * first, rtol=1e-6)


def test_backward_with_inputs_accumulates_only_into_them():
    a = md.randn(3, requires_grad=True)
    b = md.randn(3, requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    assert a.grad is not None and b.grad is None


def test_create_graph_makes_dot_grad_differentiable():
    x = md.tensor([0.5, -1.0, 2.0], dtype=md.float64, requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.numpy() ** 2)
    (g2,) = md.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(g2.numpy(), 6 * x.numpy())


def test_third_derivative():
    x = md.tensor([0.3, 1.2], dtype=md.float64, requires_grad=True)
    y = x.tanh().sum()
    (g1,) = md.autograd.grad(y, x, create_graph=True)
    (g2,) = md.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = md.autograd.grad(g2.sum(), x)
    t = np.tanh(x.numpy())
    np.testing.assert_allclose(g3.numpy(), -2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-10)


def test_a_scalar_output_saved_by_its_op_is_part_of_the_second_graph():
    """NumPy gives 0-d results as scalars; the op's saved output must still be the
    output Tensor of the graph (tanh' = 1 - tanh^2 depends on it)."""
    x = md.tensor([0.3, -0.4], dtype=md.float64, requires_grad=True)
    for f in (lambda t: t.sum().tanh(), lambda t: t.sum().exp(), lambda t: t.sum().sqrt()):
        assert md.gradgradcheck(f, (md.tensor([0.3, 0.4], dtype=md.float64, requires_grad=True),))
    (g,) = md.autograd.grad(x.sum().tanh(), x, create_graph=True)
    (h,) = md.autograd.grad(g.sum(), x)
    t = np.tanh(x.numpy().sum())
    np.testing.assert_allclose(h.numpy(), np.full(2, 2 * -2 * t * (1 - t**2)), rtol=1e-12)


def test_a_5000_op_chain_differentiates_twice_without_recursion():
    x = md.tensor([0.3, -0.2], dtype=md.float64, requires_grad=True)
    y = x
    for _ in range(5000):  # 5000 nodes (1250 each of mul, add, tanh, mul)
        y = (y * 0.999 + 0.01).tanh() * 1.001
    (g,) = md.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = md.autograd.grad(g.sum(), x)
    eps = 1e-5

    def first(v):
        t = md.tensor(v, dtype=md.float64, requires_grad=True)
        z = t
        for _ in range(5000):
            z = (z * 0.999 + 0.01).tanh() * 1.001
        return md.autograd.grad(z.sum(), t)[0].numpy()

    for k in range(2):
        e = np.zeros(2)
        e[k] = eps
        numeric = (first(x.numpy() + e) - first(x.numpy() - e))[k] / (2 * eps)
        np.testing.assert_allclose(h.numpy()[k], numeric, rtol=1e-5, atol=1e-9)


# --------------------------------------------------------------------- tensor hooks


def test_tensor_hooks_see_and_replace_gradients():
    a = md.randn(3, requires_grad=True)
    h = a * 2
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    handle = h.register_hook(lambda g: g * 10)
    a.register_hook(lambda g: g + 1)
    h.sum().backward()
    np.testing.assert_allclose(seen[0], np.ones(3))
    np.testing.assert_allclose(a.grad.numpy(), np.full(3, 21.0))
    handle.remove()
    a.grad = None
    (a * 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.full(3, 3.0))


def test_retain_grad_keeps_the_hooked_gradient_and_is_leaf():
    a = md.randn(3, requires_grad=True)
    h = a.exp()
    h.register_hook(lambda g: g * 3)
    h.retain_grad()
    assert a.is_leaf and not h.is_leaf and h.retains_grad
    h.sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), np.full(3, 3.0))


def test_a_hook_on_a_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        md.randn(3).register_hook(lambda g: g)


# ------------------------------------------------------------ against PyTorch


def _hvp_md(model, loss_fn, v):
    params = list(model.parameters())
    grads = md.autograd.grad(loss_fn(), params, create_graph=True)
    dot = sum((g * vi).sum() for g, vi in zip(grads, v))
    return [g.numpy() for g in grads], [h.numpy() for h in md.autograd.grad(dot, params)]


def _hvp_torch(torch, model, loss_fn, v):
    params = list(model.parameters())
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    dot = sum((g * vi).sum() for g, vi in zip(grads, v))
    return [g.detach().numpy() for g in grads], [
        h.numpy() for h in torch.autograd.grad(dot, params)
    ]


def _copy_weights(torch, t_model, m_model):
    state = {k: torch.from_numpy(np.array(v)) for k, v in m_model.state_dict().items()}
    t_model.load_state_dict(state)


def _models(torch, name):
    tn = torch.nn
    if name == "mlp":
        m = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
        t = tn.Sequential(tn.Linear(6, 5), tn.Tanh(), tn.Linear(5, 3))
        x = np.random.default_rng(0).standard_normal((4, 6))
    elif name == "cnn":
        m = nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.BatchNorm2d(3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(3 * 3 * 3, 3),
        )
        t = tn.Sequential(
            tn.Conv2d(2, 3, 3, padding=1),
            tn.BatchNorm2d(3),
            tn.ReLU(),
            tn.MaxPool2d(2),
            tn.Flatten(),
            tn.Linear(3 * 3 * 3, 3),
        )
        x = np.random.default_rng(0).standard_normal((4, 2, 6, 6))
    else:
        layer = {"lstm": (nn.LSTM, tn.LSTM), "gru": (nn.GRU, tn.GRU)}[name]

        def head(lib_nn, cls):
            class Net(lib_nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = cls(3, 4, batch_first=True)
                    self.fc = lib_nn.Linear(4, 3)

                def forward(self, x):
                    return self.fc(self.rnn(x)[0][:, -1])

            return Net()

        m, t = head(nn, layer[0]), head(tn, layer[1])
        x = np.random.default_rng(0).standard_normal((4, 5, 3))
    m.double()
    t.double()
    _copy_weights(torch, t, m)
    return m, t, x


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm", "gru"])
def test_hessian_vector_products_match_pytorch(name):
    torch = pytest.importorskip("torch")
    m, t, x = _models(torch, name)
    y = np.array([0, 2, 1, 2])
    rng = np.random.default_rng(1)
    v_np = [rng.standard_normal(p.shape) for p in m.parameters()]
    xm, ym = md.tensor(x, dtype=md.float64), md.tensor(y)
    xt, yt = torch.tensor(x), torch.tensor(y)
    g_m, h_m = _hvp_md(
        m, lambda: F.cross_entropy(m(xm), ym), [md.tensor(v, dtype=md.float64) for v in v_np]
    )
    g_t, h_t = _hvp_torch(
        torch,
        t,
        lambda: torch.nn.functional.cross_entropy(t(xt), yt),
        [torch.tensor(v) for v in v_np],
    )
    for a, b in zip(g_m, g_t):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    for a, b in zip(h_m, h_t):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_second_derivative_with_respect_to_the_input_matches_pytorch():
    torch = pytest.importorskip("torch")
    m, t, x = _models(torch, "cnn")
    xm = md.tensor(x, dtype=md.float64, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    w = np.random.default_rng(3).standard_normal((4, 3))
    (gm,) = md.autograd.grad((m(xm) * md.tensor(w, dtype=md.float64)).sum(), xm, create_graph=True)
    (gt,) = torch.autograd.grad((t(xt) * torch.tensor(w)).sum(), xt, create_graph=True)
    (hm,) = md.autograd.grad((gm * gm).sum(), xm)
    (ht,) = torch.autograd.grad((gt * gt).sum(), xt)
    np.testing.assert_allclose(gm.numpy(), gt.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(hm.numpy(), ht.numpy(), rtol=1e-8, atol=1e-10)


def test_a_gradient_penalty_training_step_matches_pytorch():
    """WGAN-GP's penalty: loss + 10 (||d out / d x|| - 1)^2, one SGD step."""
    torch = pytest.importorskip("torch")
    m, t, x = _models(torch, "mlp")
    om, ot = md.optim.SGD(m.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)
    for lib, model, opt in ((md, m, om), (torch, t, ot)):
        xs = (
            lib.tensor(x, requires_grad=True)
            if lib is torch
            else md.tensor(x, dtype=md.float64, requires_grad=True)
        )
        out = model(xs)
        (gx,) = lib.autograd.grad(out.sum(), xs, create_graph=True)
        norm = ((gx * gx).sum(dim=1) + 1e-12).sqrt()
        loss = (out * out).mean() + 10 * ((norm - 1) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for a, b in zip(m.parameters(), t.parameters()):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(4)
    results = []
    for lib in (md, torch):
        a = (
            lib.tensor(x, requires_grad=True)
            if lib is torch
            else md.tensor(x, dtype=md.float64, requires_grad=True)
        )
        h = a.tanh()
        h.register_hook(lambda g: g * 2)
        h.retain_grad()
        out = (h * h).sum()
        a.register_hook(lambda g: g - 1)
        out.backward()
        results.append((a.grad.detach().numpy(), h.grad.detach().numpy()))
    for mine, theirs in zip(*results):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)


@pytest.mark.parametrize("name", ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"])
def test_functional_transforms_match_pytorch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    a, b, v = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)

    def scalar(x, y):
        return (x.exp() * y).sum() + (x * x * y.tanh()).sum()

    def vector(x, y):
        return x.tanh() * y + x * x

    ours = (md.tensor(a, dtype=md.float64), md.tensor(b, dtype=md.float64))
    theirs = (torch.tensor(a), torch.tensor(b))
    vs = (md.tensor(v, dtype=md.float64),) * 2
    vt = (torch.tensor(v),) * 2
    tf = torch.autograd.functional
    if name in ("hessian",):
        got, want = AF.hessian(scalar, ours), tf.hessian(scalar, theirs)
        pairs = [(got[i][j], want[i][j]) for i in range(2) for j in range(2)]
    elif name == "jacobian":
        got, want = AF.jacobian(vector, ours), tf.jacobian(vector, theirs)
        pairs = list(zip(got, want))
    elif name in ("hvp", "vhp"):
        (o1, got), (o2, want) = (
            getattr(AF, name)(scalar, ours, vs),
            getattr(tf, name)(scalar, theirs, vt),
        )
        pairs = [(o1, o2), *zip(got, want)]
    else:
        v1 = vs[0] if name == "vjp" else vs
        v2 = vt[0] if name == "vjp" else vt
        (o1, got), (o2, want) = (
            getattr(AF, name)(vector, ours, v1),
            getattr(tf, name)(vector, theirs, v2),
        )
        got, want = (
            (got,) if not isinstance(got, tuple) else got,
            ((want,) if not isinstance(want, tuple) else want),
        )
        pairs = [(o1, o2), *zip(got, want)]
    for m, t in pairs:
        np.testing.assert_allclose(m.numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-14)
