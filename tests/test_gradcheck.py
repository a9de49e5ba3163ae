"""Every built-in differentiable op passes a float64 gradient check, and none is unchecked."""

import pytest

import minideep as md
from minideep.autograd import BUILTIN_FUNCTIONS
from minideep.checks import all_cases, functions_used, run_case

CASES = all_cases()


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradient_matches_finite_differences(case, fast_paths):
    """The whole suite runs twice: with the fast paths, and on the reference algorithms."""
    with md.fast_paths(fast_paths):
        run_case(case)


def test_every_builtin_function_has_a_gradient_check():
    covered = set()
    for case in CASES:
        covered |= functions_used(case)
    unchecked = sorted(
        f"{f.__module__}.{f.__name__}" for f in BUILTIN_FUNCTIONS if f not in covered
    )
    assert not unchecked, f"ops without a gradient check case in minideep/checks/: {unchecked}"


def test_case_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


def test_gradcheck_catches_a_backward_that_ignores_its_incoming_gradient():
    class BadSquare(md.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x  # forgets `* grad`

    x = md.randn(5, dtype=md.float64, requires_grad=True)
    with pytest.raises(md.GradcheckError, match=r"input 0 .* at index"):
        md.gradcheck(lambda t: BadSquare.apply(t), (x,))


def test_gradcheck_returns_false_instead_of_raising_when_asked():
    class WrongSign(md.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return -x

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = md.randn(3, dtype=md.float64, requires_grad=True)
    assert md.gradcheck(lambda t: WrongSign.apply(t), (x,), raise_exception=False) is False


def test_gradcheck_message_names_input_index_values_and_error():
    class Off(md.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return grad * 1.5

    a = md.randn(2, 3, dtype=md.float64)
    b = md.randn(2, 3, dtype=md.float64, requires_grad=True)
    with pytest.raises(md.GradcheckError) as info:
        md.gradcheck(lambda x, y: x + Off.apply(y), (a, b))
    message = str(info.value)
    assert "input 1" in message and "analytical" in message and "numerical" in message
    assert "error" in message and "index (" in message


def test_gradcheck_refuses_float32():
    x = md.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        md.gradcheck(lambda t: t * 2, (x,))


def test_gradcheck_leaves_existing_grads_untouched():
    x = md.randn(3, dtype=md.float64, requires_grad=True)
    (x * 3).sum().backward()
    before = x.grad.numpy().copy()
    md.gradcheck(lambda t: t.exp(), (x,))
    assert (x.grad.numpy() == before).all()
