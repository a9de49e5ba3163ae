"""The autograd engine: graph walk order, accumulation, no_grad, detach, custom Functions."""

import numpy as np
import pytest

import minideep as md


def leaf(values, dtype=md.float64):
    return md.tensor(values, dtype=dtype, requires_grad=True)


def test_reused_tensor_receives_the_sum_of_both_paths():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())


def test_diamond_runs_each_node_once_after_all_its_consumers():
    x = leaf([0.5, -1.0])
    a = x.exp()  # used by two branches
    y = (a * 2 + a.tanh()).sum()
    y.backward()
    e = np.exp(x.numpy())
    np.testing.assert_allclose(x.grad.numpy(), e * (2 + (1 - np.tanh(e) ** 2)))


def test_backward_counts_a_node_with_two_outputs_used_twice():
    calls = []

    class Split(md.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            calls.append(1)
            return ga * 2 + gb * 3

    x = leaf([1.0, 2.0])
    a, b = Split.apply(x)
    (a * b + a).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(x.grad.numpy(), 12 * x.numpy() + 2)


def test_gradients_accumulate_over_backward_calls_until_zeroed():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_broadcast_gradient_is_summed_back_to_the_input_shape():
    a = leaf(np.ones((4, 3)))
    b = leaf(np.ones((3,)))
    c = leaf(np.ones((4, 1)))
    (a * b + c).sum().backward()
    assert b.grad.shape == (3,) and c.grad.shape == (4, 1)
    np.testing.assert_allclose(b.grad.numpy(), [4.0, 4.0, 4.0])
    np.testing.assert_allclose(c.grad.numpy(), np.full((4, 1), 3.0))


def test_a_ten_thousand_op_chain_backpropagates_without_recursion():
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**10_000], rtol=1e-9)


def test_no_grad_records_nothing_and_works_as_a_decorator():
    x = leaf([1.0])
    with md.no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None

    @md.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert md.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0])
    with md.no_grad(), md.enable_grad():
        assert (x * 2).requires_grad


def test_detach_cuts_the_graph_but_shares_data():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d._ctx is None
    y = (x * d).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), d.numpy())


def test_backward_without_gradient_needs_one_element():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"shape \(2,\)"):
        (x * 2).backward()


def test_backward_with_explicit_gradient():
    x = leaf([1.0, 2.0])
    (x * 3).backward(md.tensor([1.0, -1.0], dtype=md.float64))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -3.0])


def test_backward_gradient_of_the_wrong_shape_is_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 3).backward(np.ones(3))


def test_backward_on_a_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        md.tensor([1.0]).sum().backward()


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy())
    assert (x * 1).grad is None


def test_leaf_gradient_keeps_the_leaf_dtype():
    x = md.tensor([1.0, 2.0], requires_grad=True)  # float32
    (x * 2.0).sum().backward()
    assert x.grad.dtype == md.float32


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating-point"):
        md.tensor([1, 2], requires_grad=True)


def test_integer_outputs_of_a_function_do_not_require_grad():
    x = leaf([[1.0, 3.0, 2.0]])
    values, indices = x.max(dim=1)
    assert values.requires_grad and not indices.requires_grad
    assert indices.dtype == md.int64


def test_custom_function_with_non_tensor_argument_and_needs_input_grad():
    seen = {}

    class Scale(md.autograd.Function):
        @staticmethod
        def forward(ctx, x, y, factor):
            ctx.factor = factor
            return x * y * factor

        @staticmethod
        def backward(ctx, grad):
            seen["needs"] = ctx.needs_input_grad
            return grad * ctx.factor, None, None

    x = leaf([1.0, 2.0])
    y = md.tensor([3.0, 4.0], dtype=md.float64)
    Scale.apply(x, y, 5.0).sum().backward()
    assert tuple(seen["needs"]) == (True, False, False)
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_save_for_backward_and_saved_tensors():
    class Cube(md.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * grad

    x = leaf([2.0])
    assert md.gradcheck(Cube.apply, (x,))


def test_user_functions_do_not_join_the_builtin_registry():
    class Mine(md.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

    assert Mine not in md.autograd.BUILTIN_FUNCTIONS


def test_a_branch_that_receives_no_gradient_does_not_stall_the_walk():
    class Block(md.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return None  # a gradient stop

    x = leaf([1.0, 2.0])
    shared = x * 3
    y = (Block.apply(shared.exp()) + shared * 2).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_backward_through_several_roots_at_once():
    x = leaf([1.0, 2.0])
    a, b = x * 2, x * 3
    md.autograd.backward([a, b], [np.ones(2), np.ones(2)])
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_a_leaf_gradient_is_an_owned_contiguous_array_even_from_a_broadcast():
    """sum's backward hands big gradients on as broadcast views; a leaf's .grad is a copy."""
    x = md.tensor(np.ones((300, 300), np.float32), requires_grad=True)
    (x.sum() * 3).backward()
    g = x.grad.numpy()
    assert g.flags.c_contiguous and g.flags.writeable
    g *= 2  # the user may scale it in place
    np.testing.assert_array_equal(x.grad.numpy(), np.full((300, 300), 6, np.float32))
