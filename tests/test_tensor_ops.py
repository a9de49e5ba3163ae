"""The second edition's tensor ops give PyTorch's values, indices and gradients (float64),
name bad input in their errors, and exchange memory with NumPy/PyTorch through DLPack.

The PyTorch comparisons skip without PyTorch."""

import math

import numpy as np
import pytest

import minideep as md

RNG = np.random.default_rng(11)
I_GATHER = np.array([[0, 3, 3, 1, 0], [2, 2, 0, 1, 3], [1, 0, 0, 0, 2]])  # for (3, 4), dim 1
I_ROWS = np.array([[2, 0, 1, 0], [0, 0, 2, 1]])  # for (3, 4), dim 0


def _i(L, array):
    return L.tensor(array)


# (name, fn(L, *inputs) with L = minideep or torch, input shapes). fn may return a tuple.
CASES = [
    # elementwise
    ("maximum", lambda L, a, b: L.maximum(a, b), [(3, 4), (4,)]),
    ("minimum", lambda L, a, b: L.minimum(a, b) + a.minimum(b), [(3, 1), (3, 4)]),
    ("sin cos", lambda L, a: L.sin(a) * a.cos() + L.cos(a), [(3, 4)]),
    ("pow function", lambda L, a, b: L.pow(a.abs() + 0.5, b) + L.pow(2.0, a), [(5,), (5,)]),
    ("log1p", lambda L, a: L.log1p(a.abs()) + a.abs().log1p(), [(4,)]),
    ("masked_fill", lambda L, a: a.masked_fill(a > 0.3, -2.0), [(3, 4)]),
    (
        "masked_fill tensor value broadcast mask",
        lambda L, a, v: L.masked_fill(a, a[0] > 0, v[0]),
        [(3, 4), (1,)],
    ),
    ("triu tril", lambda L, a: L.triu(a, 1) + a.tril() + a.tril(-2) * 3, [(2, 3, 4)]),
    ("triu wide", lambda L, a: a.triu(-1) + L.tril(a, 2), [(3, 6)]),
    ("bmm", lambda L, a, b: L.bmm(a, b) + a.bmm(b), [(2, 3, 4), (2, 4, 5)]),
    # norms, moments, reductions
    ("norm", lambda L, a: a.norm(), [(3, 4)]),
    ("norm dim keepdim", lambda L, a: a.norm(dim=1, keepdim=True) + L.norm(a, 2, 0), [(3, 4)]),
    ("norm fro", lambda L, a: a.norm(p="fro", dim=(0, 1)), [(3, 4)]),
    ("norm 1", lambda L, a: a.norm(p=1, dim=-1), [(3, 4)]),
    ("norm 3 dims", lambda L, a: L.norm(a, 3, dim=(0, 2)), [(2, 3, 2)]),
    ("norm 0.5", lambda L, a: a.norm(p=0.5, dim=1), [(3, 4)]),
    ("norm inf", lambda L, a: a.norm(p=math.inf, dim=0) + a.norm(p=-math.inf), [(3, 4)]),
    ("norm 0", lambda L, a: (a * (a > 0)).norm(p=0, dim=1) + a.sum(), [(3, 4)]),
    ("var", lambda L, a: a.var() + a.var(1) + L.var(a, 0, keepdim=True).sum(), [(3, 4)]),
    ("var unbiased positional", lambda L, a: a.var(1, False) + a.var(0, True).sum(), [(3, 4)]),
    ("var correction", lambda L, a: a.var(dim=1, correction=0) + L.var(a, correction=2), [(3, 4)]),
    (
        "std",
        lambda L, a: a.std() + a.std(0, keepdim=True) + L.std(a, 1, correction=0)[:, None],
        [(4, 3)],
    ),
    ("logsumexp", lambda L, a: a.logsumexp(1) + L.logsumexp(a, 0, keepdim=True).T, [(3, 4)]),
    ("logsumexp dims", lambda L, a: L.logsumexp(a * 3, (0, 2)), [(2, 3, 4)]),
    ("cumsum", lambda L, a: a.cumsum(1) + L.cumsum(a, -2) * a, [(3, 4)]),
    # shapes
    ("flip", lambda L, a: a.flip(0, 2) + L.flip(a, (1,)) + a.flip(-1), [(2, 3, 4)]),
    ("roll", lambda L, a: a.roll((1, -5), (0, 1)) + L.roll(a, 2, 1) + a.roll(7), [(3, 4)]),
    ("repeat", lambda L, a: a.repeat(2, 1, 3), [(3, 2)]),
    ("repeat same dims", lambda L, a: a.repeat(1, 2) * 2, [(3, 2)]),
    ("expand", lambda L, a: a.expand(2, 3, 4) + a.expand(-1, 4), [(3, 1)]),
    ("chunk", lambda L, a: a.chunk(3, dim=1), [(2, 7)]),
    ("chunk fewer", lambda L, a: L.chunk(a, 4, 0), [(3, 2)]),
    ("split size", lambda L, a: a.split(3, dim=1), [(2, 7)]),
    ("split sections", lambda L, a: L.split(a, [1, 0, 3], dim=0), [(4, 2)]),
    ("unbind", lambda L, a: a.unbind(1) + L.unbind(a), [(2, 3)]),
    # gather, scatter, select
    ("gather", lambda L, a: a.gather(1, _i(L, I_GATHER)), [(3, 4)]),
    ("gather smaller", lambda L, a: L.gather(a, 0, _i(L, I_ROWS[:, :3])), [(3, 4)]),
    (
        "scatter_add",
        lambda L, a, s: a.scatter_add(1, _i(L, I_GATHER), s),
        [(3, 4), (3, 5)],
    ),
    ("index_select", lambda L, a: a.index_select(1, _i(L, [3, 0, 3, 1])), [(2, 4)]),
    ("index_select fn", lambda L, a: L.index_select(a, 0, _i(L, [1])), [(2, 4)]),
    # sorting (random inputs: no ties)
    ("sort", lambda L, a: a.sort(), [(3, 5)]),
    ("sort descending dim", lambda L, a: L.sort(a, 0, descending=True), [(4, 3)]),
    ("argsort", lambda L, a: (a.argsort(), L.argsort(a, 0, descending=True)), [(4, 3)]),
    ("topk", lambda L, a: a.topk(3), [(3, 6)]),
    ("topk smallest dim", lambda L, a: L.topk(a, 2, dim=0, largest=False), [(4, 3)]),
    # einsum
    ("einsum matmul", lambda L, a, b: L.einsum("ij,jk->ik", a, b), [(3, 4), (4, 2)]),
    ("einsum implicit", lambda L, a, b: L.einsum("bij,bjk", a, b), [(2, 3, 4), (2, 4, 2)]),
    ("einsum spaces list", lambda L, a, b: L.einsum("i j , j -> i", [a, b]), [(3, 4), (4,)]),
    ("einsum implicit capitals", lambda L, a: L.einsum("bA", a), [(3, 4)]),
    ("einsum transpose", lambda L, a: L.einsum("ijk->kij", a), [(2, 3, 4)]),
    ("einsum sum all", lambda L, a: L.einsum("ij->", a), [(2, 3)]),
    ("einsum diagonal", lambda L, a: L.einsum("ii->i", a), [(3, 3)]),
    ("einsum trace", lambda L, a: L.einsum("ii", a), [(3, 3)]),
    ("einsum repeated kept", lambda L, a, b: L.einsum("iij,j->ij", a, b), [(3, 3, 2), (2,)]),
    ("einsum outer", lambda L, a, b: L.einsum("i,j", a, b), [(3,), (4,)]),
    ("einsum size-1 broadcast", lambda L, a, b: L.einsum("ij,j->i", a, b), [(3, 1), (4,)]),
    (
        "einsum ellipsis",
        lambda L, a, b: L.einsum("...ij,...jk->...ik", a, b),
        [(2, 1, 3, 4), (5, 4, 2)],
    ),
    ("einsum ellipsis implicit", lambda L, a: L.einsum("...ij", a), [(2, 3, 4)]),
    ("einsum ellipsis summed", lambda L, a: L.einsum("...ij->ij", a), [(2, 3, 4)]),
    ("einsum ellipsis middle", lambda L, a: L.einsum("i...j->j...i", a), [(2, 3, 1, 4)]),
    (
        "einsum three operands",
        lambda L, a, b, c: L.einsum("ij,jk,kl->li", a, b, c),
        [(2, 3), (3, 4), (4, 2)],
    ),
    (
        "einsum attention",
        lambda L, q, k: L.einsum("bhqd,bhkd->bhqk", q, k).softmax(-1),
        [(2, 2, 3, 4), (2, 2, 5, 4)],
    ),
]


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _run_both(fn, shapes):
    torch = pytest.importorskip("torch")
    arrays = [RNG.standard_normal(s) for s in shapes]
    ours = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return torch, ours, theirs, _outputs(fn(md, *ours)), _outputs(fn(torch, *theirs))


@pytest.mark.parametrize("name, fn, shapes", CASES, ids=[c[0] for c in CASES])
def test_values_indices_and_gradients_match_pytorch(name, fn, shapes):
    torch, ours, theirs, outs_md, outs_t = _run_both(fn, shapes)
    assert len(outs_md) == len(outs_t)
    loss_md, loss_t = 0, 0
    for m, t in zip(outs_md, outs_t):
        assert m.shape == tuple(t.shape)
        assert f"torch.{np.dtype(m.dtype).name}" == str(t.dtype)  # int64 indices included
        np.testing.assert_allclose(m.numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-12)
        if t.requires_grad:
            upstream = RNG.standard_normal(tuple(t.shape))
            loss_md = loss_md + (m * md.tensor(upstream, dtype=md.float64)).sum()
            loss_t = loss_t + (t * torch.tensor(upstream)).sum()
    if isinstance(loss_t, int):  # indices only
        return
    loss_md.backward()
    loss_t.backward()
    for m, t in zip(ours, theirs):
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


NONLINEAR = "norm|norm dim keepdim|norm fro|norm 3 dims|norm 0.5|var|std|logsumexp|" + (
    "logsumexp dims|sin cos|pow function|cumsum|bmm|einsum matmul|einsum implicit|"
    "einsum repeated kept|einsum outer|einsum size-1 broadcast|einsum ellipsis|"
    "einsum three operands|einsum attention"
)
SECOND_ORDER = [c for c in CASES if c[0] in NONLINEAR.split("|")]


@pytest.mark.parametrize("name, fn, shapes", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_derivatives_match_pytorch(name, fn, shapes):
    torch, ours, theirs, outs_md, outs_t = _run_both(fn, shapes)
    ups = [RNG.standard_normal(tuple(t.shape)) for t in outs_t]
    g_md = md.autograd.grad(outs_md, ours, ups, create_graph=True)
    g_t = torch.autograd.grad(outs_t, theirs, [torch.tensor(u) for u in ups], create_graph=True)
    directions = [RNG.standard_normal(t.shape) for t in theirs]
    h_md = md.autograd.grad(
        sum((g * md.tensor(d, dtype=md.float64)).sum() for g, d in zip(g_md, directions)),
        ours,
        allow_unused=True,
    )
    h_t = torch.autograd.grad(
        sum((g * torch.tensor(d)).sum() for g, d in zip(g_t, directions)),
        theirs,
        allow_unused=True,
    )
    for m, t in zip(h_md, h_t):
        expected = np.zeros(m.shape) if t is None else t.numpy()
        got = np.zeros(expected.shape) if m is None else m.numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ ties and edge cases


def test_maximum_and_minimum_split_the_gradient_at_ties_as_pytorch():
    torch = pytest.importorskip("torch")
    a, b = np.array([1.0, 2.0, 3.0, -1.0]), np.array([1.0, 0.0, 3.0, 5.0])
    for name in ("maximum", "minimum"):
        x, y = (md.tensor(v, dtype=md.float64, requires_grad=True) for v in (a, b))
        xt, yt = (torch.tensor(v, requires_grad=True) for v in (a, b))
        getattr(md, name)(x, y).sum().backward()
        getattr(torch, name)(xt, yt).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())
        np.testing.assert_array_equal(y.grad.numpy(), yt.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, 0.0, 0.5, 1.0])


def test_sort_is_stable_with_ties_and_nans_as_pytorch_stable_sort():
    torch = pytest.importorskip("torch")
    data = np.array([[1.0, 3.0, 3.0, np.nan, 2.0, 3.0, 1.0], [0.0, -0.0, 5.0, 5.0, 0.0, 1, 1]])
    for descending in (False, True):
        ours = md.tensor(data, dtype=md.float64).sort(dim=1, descending=descending)
        theirs = torch.tensor(data).sort(dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        assert ours.indices.dtype == np.int64
        argsorted = md.tensor(data).argsort(dim=1, descending=descending)
        np.testing.assert_array_equal(argsorted.numpy(), theirs.indices.numpy())


def test_topk_ties_take_the_lowest_index_first():
    x = md.tensor([1.0, 3.0, 3.0, 2.0, 3.0])
    values, indices = x.topk(2)
    assert indices.tolist() == [1, 2] and values.tolist() == [3.0, 3.0]
    assert x.topk(3, largest=False).indices.tolist() == [0, 3, 1]
    assert indices.dtype == np.int64


def test_sort_and_topk_gradients_go_to_the_source_positions():
    x = md.tensor([[0.3, -1.0, 2.0]], dtype=md.float64, requires_grad=True)
    values, _ = x.topk(2)
    (values * md.tensor([[10.0, 1.0]], dtype=md.float64)).sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 10.0]]


def test_results_are_named_tuples():
    x = md.randn(3, 4)
    for result in (x.sort(), x.topk(2), md.sort(x, 0), md.topk(x, 1, 0)):
        values, indices = result
        assert result.values is values and result.indices is indices
        assert indices.dtype == np.int64 and not indices.requires_grad


def test_gather_and_scatter_add_sum_repeated_indices():
    a = md.zeros(2, 3, dtype=md.float64, requires_grad=True)
    index = md.tensor([[0, 0, 2, 0]])
    src = md.ones(1, 4, dtype=md.float64, requires_grad=True)
    out = a.scatter_add(1, index, src)
    assert out.tolist() == [[3.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    g = a.gather(1, md.tensor([[0, 0, 0], [1, 1, 1]]))
    g.sum().backward()
    assert a.grad.tolist() == [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]]


def test_scatter_add_uses_the_leading_block_of_a_larger_src_as_pytorch():
    torch = pytest.importorskip("torch")
    a, src = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 5))
    ours = md.scatter_add(
        md.tensor(a, dtype=md.float64),
        0,
        md.tensor(I_ROWS[:, :3]),
        md.tensor(src, dtype=md.float64),
    )
    theirs = torch.scatter_add(torch.tensor(a), 0, torch.tensor(I_ROWS[:, :3]), torch.tensor(src))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_masked_fill_keeps_the_dtype_of_an_integer_tensor():
    torch = pytest.importorskip("torch")
    data = np.arange(6).reshape(2, 3)
    ours = md.tensor(data).masked_fill(md.tensor(data) > 2, 7.9)
    theirs = torch.tensor(data).masked_fill(torch.tensor(data) > 2, 7.9)
    assert ours.dtype == np.int64 and ours.tolist() == theirs.tolist()


def test_cumsum_of_integers_and_bools_is_int64_as_pytorch():
    assert md.tensor([1, 2, 3]).cumsum(0).tolist() == [1, 3, 6]
    mask = md.tensor([[True, False, True]])
    assert mask.cumsum(1).dtype == np.int64 and mask.cumsum(1).tolist() == [[1, 1, 2]]


def test_norm_of_a_zero_vector_has_zero_gradient_as_pytorch():
    for p in (2, 3, 0.5, 1):
        x = md.zeros(2, 3, dtype=md.float64, requires_grad=True)
        x.norm(p=p, dim=1).sum().backward()
        assert x.grad.tolist() == [[0.0] * 3] * 2, p


def test_norm_inf_shares_the_gradient_between_ties_as_pytorch():
    torch = pytest.importorskip("torch")
    data = np.array([[0.0, 1.0, -1.0, 0.5], [2.0, -2.0, 2.0, 1.0]])
    x = md.tensor(data, dtype=md.float64, requires_grad=True)
    xt = torch.tensor(data, requires_grad=True)
    x.norm(p=math.inf, dim=1).sum().backward()
    xt.norm(p=math.inf, dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-15)


def test_logsumexp_is_finite_for_huge_inputs_and_handles_infinities_as_pytorch():
    torch = pytest.importorskip("torch")
    data = np.array([[1000.0, 1000.0], [-np.inf, 0.0], [np.inf, 1.0], [-np.inf, -np.inf]])
    with np.errstate(divide="ignore"):  # log(0) for the row of -inf
        ours = md.tensor(data, dtype=md.float64).logsumexp(1)
    np.testing.assert_allclose(ours.numpy(), torch.tensor(data).logsumexp(1).numpy())


def test_var_and_std_default_to_correction_one():
    data = RNG.standard_normal((4, 5))
    x = md.tensor(data, dtype=md.float64)
    np.testing.assert_allclose(x.var(1).numpy(), data.var(1, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(x.std(correction=0).numpy(), data.std(), rtol=1e-12)
    np.testing.assert_allclose(x.var(0, unbiased=False).numpy(), data.var(0), rtol=1e-12)
    np.testing.assert_allclose(x.std(0, keepdim=True).numpy(), data.std(0, ddof=1, keepdims=True))


def test_chunk_split_and_unbind_return_tuples_of_views_in_order():
    x = md.arange(10)
    assert [c.tolist() for c in x.chunk(4)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert [c.tolist() for c in x.split([2, 8])] == [[0, 1], list(range(2, 10))]
    assert isinstance(x.reshape(2, 5).unbind(1), tuple) and len(x.reshape(2, 5).unbind(1)) == 5


def test_the_new_ops_are_exported():
    names = "maximum minimum pow sin cos log1p norm var std logsumexp cumsum flip roll chunk"
    names += " split unbind gather scatter_add index_select masked_fill topk sort argsort"
    names += " triu tril bmm einsum from_dlpack"
    for name in names.split():
        assert callable(getattr(md, name)), name
    methods = names.replace(" einsum from_dlpack", "") + " repeat expand"
    for name in methods.split():
        assert callable(getattr(md.Tensor, name)), name


# ------------------------------------------------------------------ errors


ERRORS = [
    (lambda x, i: x.gather(2, i), IndexError, r"dimension 2 is out of range .* 2 dims"),
    (lambda x, i: x.gather(1, i[0]), ValueError, r"index of shape \(2,\) .* shape \(3, 4\)"),
    (lambda x, i: x.gather(1, i + 4), IndexError, r"index 6 is out of bounds .* size 4"),
    (lambda x, i: x.gather(1, i - 3), IndexError, r"index -3 is out of bounds"),
    (lambda x, i: x.gather(0, x), TypeError, r"integer \(int64\) tensor, got float32"),
    (lambda x, i: x.gather(1, md.zeros(4, 1).long()), ValueError, r"larger than the input"),
    (
        lambda x, i: x.scatter_add(1, i, md.ones(2, 2, dtype=md.float64)),
        TypeError,
        "src has dtype float64 but the input has dtype float32",
    ),
    (lambda x, i: x.scatter_add(1, i, md.ones(2, 1)), ValueError, r"larger than src of shape"),
    (lambda x, i: x.index_select(0, i), ValueError, r"must be 1-d, got shape \(2, 2\)"),
    (lambda x, i: x.index_select(1, md.tensor([4])), IndexError, "index 4 is out of bounds"),
    (lambda x, i: x.topk(5), ValueError, r"k=5 is out of range for dimension -1 of size 4"),
    (lambda x, i: x.sort(dim=3), IndexError, "dimension 3 is out of range"),
    (lambda x, i: x.flip(0, 0), ValueError, "name a dimension twice"),
    (lambda x, i: x.flip(2), IndexError, "flip: dimension 2 is out of range"),
    (lambda x, i: x.roll((1, 2), 0), ValueError, "same length, got 2 and 1"),
    (lambda x, i: x.repeat(2), ValueError, r"1 repeat sizes \(2,\) for a tensor of shape \(3, 4\)"),
    (lambda x, i: x.split([1, 1], 0), ValueError, r"\[1, 1\] do not add up to the size 3"),
    (lambda x, i: x.chunk(0), ValueError, "chunks must be positive"),
    (lambda x, i: x.masked_fill(x, 0.0), TypeError, "mask must be a bool tensor"),
    (lambda x, i: x.masked_fill(x > 0, x[0]), ValueError, r"0-d tensor, got .* shape \(4,\)"),
    (lambda x, i: x[0].triu(), ValueError, r"triu: .* at least 2 dimensions, got shape \(4,\)"),
    (lambda x, i: md.bmm(x, x), ValueError, r"must be 3-d, got shapes \(3, 4\) and \(3, 4\)"),
    (
        lambda x, i: md.bmm(x[None], x[None]),
        ValueError,
        r"\(1, 3, 4\) and \(1, 3, 4\) do not match",
    ),
    (lambda x, i: x.var(unbiased=True, correction=1), ValueError, "either unbiased or correction"),
    (lambda x, i: x.norm(p="nuc"), ValueError, "p must be a number or 'fro', got 'nuc'"),
    (lambda x, i: md.einsum("ij,jk", x), ValueError, "fewer operands .* 2 in the equation, 1"),
    (lambda x, i: md.einsum("ij", x, x), ValueError, "more operands"),
    (lambda x, i: md.einsum("ijk", x), ValueError, r"subscripts in 'ijk' \(3\) .* \(3, 4\)"),
    (lambda x, i: md.einsum("ij,jk", x, x), ValueError, r"subscript j has size 3 .* size 4"),
    (lambda x, i: md.einsum("ii", x), ValueError, r"subscript i is repeated .* 3 != 4"),
    (lambda x, i: md.einsum("ij->k", x), ValueError, "output subscript k does not appear"),
    (lambda x, i: md.einsum("ij->ii", x), ValueError, "subscript i appears more than once"),
    (lambda x, i: md.einsum("i1", x), ValueError, "invalid subscripts 'i1'"),
    (lambda x, i: md.from_dlpack([1, 2]), TypeError, "list does not implement __dlpack__"),
]


@pytest.mark.parametrize("fn, error, message", ERRORS)
def test_bad_input_is_refused_with_a_message_naming_it(fn, error, message):
    x = md.randn(3, 4)
    index = md.tensor([[1, 0], [2, 1]])
    with pytest.raises(error, match=message):
        fn(x, index)


# ------------------------------------------------------------------ DLPack


def test_pytorch_and_minideep_share_memory_through_dlpack():
    torch = pytest.importorskip("torch")
    x = md.zeros(2, 3, dtype=md.float64)
    t = torch.from_dlpack(x)
    t[0, 1] = 5.0
    assert x.numpy()[0, 1] == 5.0 and t.dtype == torch.float64

    source = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    y = md.from_dlpack(source)
    source[1, 2] = -7
    assert isinstance(y, md.Tensor) and y.dtype == np.int32 and y.tolist()[1][2] == -7
    assert y.shape == (2, 3) and y.device == "cpu"


def test_numpy_and_minideep_share_memory_through_dlpack():
    array = np.arange(4.0)
    x = md.from_dlpack(array)
    array[0] = 9.0
    assert x.numpy()[0] == 9.0 and x.dtype == np.float64
    back = np.from_dlpack(x)
    back[1] = -1.0
    assert x.numpy()[1] == -1.0
    assert x.__dlpack_device__() == (1, 0)
    assert md.from_dlpack(x) is x


@pytest.mark.gpu
@pytest.mark.skipif(not md.cuda.is_available(), reason="needs CUDA and CuPy")
def test_cupy_and_minideep_share_gpu_memory_through_dlpack():
    import cupy

    array = cupy.arange(4.0)
    x = md.from_dlpack(array)
    array[0] = 9.0
    assert x.device == "cuda" and float(x.data[0]) == 9.0
    back = cupy.from_dlpack(x)
    back[1] = -1.0
    assert float(x.data[1]) == -1.0
