"""Max pooling sends the gradient of a tied window to its first maximal element, as
PyTorch does, on the tiled fast path (stride == kernel) and on the general path."""

import numpy as np
import pytest

import minideep as md
import minideep.nn.functional as F


def tied_input(shape, kind, rng):
    x = rng.standard_normal(shape)
    if kind == "two values":
        return np.floor(rng.random(shape) * 2)  # many windows with equal maxima
    if kind == "after relu":
        return np.maximum(x, 0)  # windows of zeros
    return x


@pytest.mark.parametrize("kind", ["two values", "after relu", "distinct"])
@pytest.mark.parametrize(
    "shape, kernel, stride",
    [
        ((2, 3, 8, 8), 2, None),
        ((2, 3, 9, 7), 2, None),
        ((1, 2, 6, 6), (2, 3), (2, 3)),
        ((2, 2, 7, 7), 3, 2),
    ],  # fmt: skip
)
def test_max_pool2d_ties_match_pytorch(shape, kernel, stride, kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = tied_input(shape, kind, rng)
    ours = md.tensor(x, dtype=md.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y_ours = F.max_pool2d(ours, kernel, stride)
    y_theirs = torch.nn.functional.max_pool2d(theirs, kernel, stride)
    upstream = rng.standard_normal(tuple(y_theirs.shape))
    y_ours.backward(md.tensor(upstream, dtype=md.float64))
    y_theirs.backward(torch.tensor(upstream))
    np.testing.assert_array_equal(y_ours.numpy(), y_theirs.detach().numpy())
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=0, atol=0)


def test_tied_window_gradient_goes_to_the_first_element():
    x = md.zeros(1, 1, 2, 2, requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.numpy().ravel().tolist() == [1.0, 0.0, 0.0, 0.0]
