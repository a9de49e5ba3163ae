"""Tensor creation, dtype rules, forward values against NumPy, and error messages."""

import numpy as np
import pytest

import minideep as md


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, md.float32),
        ([1.0, 2.0], md.float32),
        (np.array([1.0, 2.0]), md.float32),
        ([1, 2], md.int64),
        (np.array([1, 2], dtype=np.int32), md.int64),
        ([True, False], np.bool_),
    ],
)
def test_tensor_default_dtypes(data, dtype):
    assert md.tensor(data).dtype == dtype


def test_explicit_dtype_wins():
    assert md.tensor([1.0], dtype=md.float64).dtype == md.float64


def test_python_scalar_does_not_promote_float32():
    x = md.tensor([1.0, 2.0])
    for y in (x * 2.5, 2.5 * x, x + 1, x / 3.0, x**2.0, 1.0 - x):
        assert y.dtype == md.float32


def test_int_tensor_with_float_scalar_gives_float32():
    assert (md.tensor([1, 2]) * 0.5).dtype == md.float32
    assert (md.tensor([1, 2]) / 2).dtype == md.float32


def test_float32_with_float64_tensor_promotes():
    assert (md.tensor([1.0]) + md.tensor([1.0], dtype=md.float64)).dtype == md.float64


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0], dtype=np.float32)
    t = md.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 1.0


def test_creation_functions():
    assert md.zeros(2, 3).shape == (2, 3) and md.zeros(2, 3).numpy().sum() == 0
    assert md.ones((2, 3)).numpy().sum() == 6
    assert md.full((2,), 7).dtype == md.int64 and md.full((2,), 0.5).dtype == md.float32
    assert md.arange(5).tolist() == [0, 1, 2, 3, 4] and md.arange(5).dtype == md.int64
    assert md.arange(0, 1, 0.25).dtype == md.float32
    assert md.zeros_like(md.ones(3, dtype=md.float64)).dtype == md.float64
    assert md.ones_like(md.zeros(2)).numpy().tolist() == [1.0, 1.0]
    assert md.randn(4, 5, requires_grad=True).requires_grad


def test_manual_seed_makes_random_draws_reproducible():
    md.manual_seed(123)
    a = md.randn(5).numpy(), md.rand(3).numpy()
    md.manual_seed(123)
    b = md.randn(5).numpy(), md.rand(3).numpy()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert ((a[1] >= 0) & (a[1] < 1)).all()


def test_attributes():
    t = md.randn(2, 3)
    assert t.shape == (2, 3) and t.ndim == 2 and len(t) == 2 and t.device == "cpu"
    assert t.T.shape == (3, 2) and t.numel() == 6 and t.size(1) == 3
    assert isinstance(t.data, np.ndarray) and t.grad is None
    assert md.tensor(3.0).item() == 3.0


def test_comparisons_return_tensors_without_grad():
    x = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = x > 1.5
    assert isinstance(m, md.Tensor) and not m.requires_grad
    assert m.tolist() == [False, True, True]
    assert (x == 2.0).tolist() == [False, True, False]


def test_tensors_are_hashable_by_identity():
    a, b = md.tensor([1.0]), md.tensor([1.0])
    assert len({a, b}) == 2


def test_numpy_array_on_the_left_defers_to_the_tensor():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([2.0, 3.0], dtype=np.float32) * x
    assert isinstance(y, md.Tensor) and y.requires_grad


def test_repr_shows_values_and_grad_fn():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<Mul>" in repr(x * 2)


RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((4,))
P = RNG.uniform(0.5, 2.0, (3, 4))

FORWARD = [
    ("add", lambda t: t(A) + t(B), A + B),
    ("sub", lambda t: t(A) - t(B), A - B),
    ("mul", lambda t: t(A) * t(B), A * B),
    ("div", lambda t: t(A) / t(P), A / P),
    ("pow", lambda t: t(P) ** 1.5, P**1.5),
    ("matmul", lambda t: t(A) @ t(B), A @ B),
    ("exp", lambda t: t(A).exp(), np.exp(A)),
    ("log", lambda t: t(P).log(), np.log(P)),
    ("sqrt", lambda t: t(P).sqrt(), np.sqrt(P)),
    ("abs", lambda t: t(A).abs(), np.abs(A)),
    ("tanh", lambda t: t(A).tanh(), np.tanh(A)),
    ("sigmoid", lambda t: t(A).sigmoid(), 1 / (1 + np.exp(-A))),
    ("relu", lambda t: t(A).relu(), np.maximum(A, 0)),
    ("clamp", lambda t: t(A).clamp(-0.5, 0.5), np.clip(A, -0.5, 0.5)),
    ("sum", lambda t: t(A).sum(dim=1), A.sum(1)),
    ("mean keepdim", lambda t: t(A).mean(dim=0, keepdim=True), A.mean(0, keepdims=True)),
    ("var", lambda t: t(A).var(dim=1), A.var(1, ddof=1)),
    ("max", lambda t: t(A).max(), A.max()),
    ("max dim", lambda t: t(A).max(dim=1).values, A.max(1)),
    ("argmax", lambda t: t(A).argmax(dim=1), A.argmax(1)),
    ("softmax", lambda t: t(A).softmax(dim=1), np.exp(A) / np.exp(A).sum(1, keepdims=True)),
    ("log_softmax", lambda t: t(A).log_softmax(dim=1), A - np.log(np.exp(A).sum(1, keepdims=True))),
    ("reshape", lambda t: t(A).reshape(2, 6), A.reshape(2, 6)),
    ("permute", lambda t: t(A).permute(1, 0), A.T),
    ("getitem", lambda t: t(A)[[0, 2], 1:], A[[0, 2], 1:]),
    ("cat", lambda t: md.cat([t(A), t(A)], dim=0), np.concatenate([A, A])),
    ("stack", lambda t: md.stack([t(B), t(B)], dim=1), np.stack([B, B], 1)),
    ("where", lambda t: md.where(t(A) > 0, t(A), t(P)), np.where(A > 0, A, P)),
]


@pytest.mark.parametrize("name, fn, expected", FORWARD, ids=[f[0] for f in FORWARD])
def test_forward_matches_numpy(name, fn, expected):
    out = fn(lambda a: md.tensor(a, dtype=md.float64))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_max_with_dim_returns_values_and_indices_of_the_first_maximum():
    x = md.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    assert values.tolist() == [3.0, 2.0] and indices.tolist() == [1, 0]
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


def test_max_over_everything_shares_the_gradient_between_ties():
    x = md.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]


def test_softmax_is_finite_for_huge_logits():
    x = md.tensor([[1000.0, -1000.0, 0.0]])
    assert np.isfinite(x.softmax(dim=1).numpy()).all()
    assert np.isfinite(x.log_softmax(dim=1).numpy()).all()
    assert np.isfinite(md.tensor([-1000.0, 1000.0]).sigmoid().numpy()).all()


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        md.randn(2, 3) @ md.randn(4, 5)


def test_broadcast_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2,3\).*\(4,\)|\(2, 3\).*\(4,\)"):
        md.randn(2, 3) + md.randn(4)


def test_reshape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        md.randn(2, 3).reshape(4, 2)


def test_cat_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        md.cat([md.randn(2, 3), md.randn(2, 4)], dim=0)


def test_index_error_names_shape():
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        md.randn(2, 3)[5]


def test_to_cuda_without_gpu_is_a_clear_error():
    if md.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        md.randn(2).to("cuda")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="tpu"):
        md.randn(2).to("tpu")


def test_casts_are_differentiable():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == md.float64
    (y * 2).sum().backward()
    assert x.grad.dtype == md.float32 and x.grad.tolist() == [2.0, 2.0]


def test_importing_minideep_imports_neither_cupy_nor_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys, minideep; "
        "print([m for m in ('cupy', 'matplotlib', 'imageio', 'tqdm') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
