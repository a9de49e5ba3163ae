"""The transformer vocabulary against PyTorch: layer/group norm, smooth activations, erf,
embeddings, vector normalisation, attention, the new losses, and the modules
(MultiheadAttention, TransformerEncoderLayer, TransformerEncoder...) with copied weights:
the same state_dict keys and shapes, the same outputs and the same gradients, in float64."""

import math

import numpy as np
import pytest

import minideep as md
from minideep import nn
from minideep.nn import functional as F
from minideep.ops.activation import erf_array

RTOL, ATOL = 1e-10, 1e-12


def _rng(seed=0):
    return np.random.default_rng(seed)


def _close(a, b, rtol=RTOL, atol=ATOL):
    a = a.numpy() if hasattr(a, "numpy") and not isinstance(a, np.ndarray) else a
    b = b.detach().numpy() if hasattr(b, "detach") else b
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _leaves(*arrays):
    """The same float64 arrays as minideep and torch leaves that require grad."""
    torch = pytest.importorskip("torch")
    ours = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, theirs


def _compare_function(md_fn, torch_fn, arrays, seed=1):
    """Forward values and gradients (random upstream gradient) of every input."""
    torch = pytest.importorskip("torch")
    ours, theirs = _leaves(*arrays)
    out, expected = md_fn(*ours), torch_fn(*theirs)
    _close(out, expected)
    g = _rng(seed).standard_normal(tuple(expected.shape))
    out.backward(md.tensor(g, dtype=md.float64))
    expected.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        _close(a.grad, b.grad)


# ----------------------------------------------------------------------- erf


def test_erf_matches_math_erf_to_float64_rounding():
    x = np.concatenate(
        [np.linspace(-7, 7, 40001), [0.0, 1e-300, -1e-12, 2.5, -2.5, 6.0, 30.0, np.inf, -np.inf]]
    )
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf_array(x), expected, rtol=2e-15, atol=1e-15)


def test_erf_of_nan_is_nan_and_float32_stays_float32():
    assert np.isnan(erf_array(np.array([np.nan]))).all()
    assert erf_array(np.float32([0.3, 3.0])).dtype == np.float32


# ----------------------------------------------------------------------- functions


def _torch_f():
    return pytest.importorskip("torch").nn.functional


FUNCTIONS = {
    "layer_norm affine": (
        lambda x, w, b: F.layer_norm(x, (5,), w, b),
        lambda x, w, b: _torch_f().layer_norm(x, (5,), w, b),
        [(2, 3, 5), (5,), (5,)],
    ),
    "layer_norm 2 dims eps": (
        lambda x: F.layer_norm(x, (3, 5), eps=1e-3),
        lambda x: _torch_f().layer_norm(x, (3, 5), eps=1e-3),
        [(2, 3, 5)],
    ),
    "group_norm": (
        lambda x, w, b: F.group_norm(x, 3, w, b),
        lambda x, w, b: _torch_f().group_norm(x, 3, w, b),
        [(2, 6, 4, 3), (6,), (6,)],
    ),
    "group_norm no affine": (
        lambda x: F.group_norm(x, 2, eps=1e-2),
        lambda x: _torch_f().group_norm(x, 2, eps=1e-2),
        [(3, 4, 5)],
    ),
    "gelu": (F.gelu, lambda x: _torch_f().gelu(x), [(4, 7)]),
    "gelu tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: _torch_f().gelu(x, approximate="tanh"),
        [(4, 7)],
    ),
    "silu": (F.silu, lambda x: _torch_f().silu(x), [(4, 7)]),
    "softplus": (F.softplus, lambda x: _torch_f().softplus(x), [(4, 7)]),
    "softplus beta threshold": (
        lambda x: F.softplus(x * 3, beta=2, threshold=4),
        lambda x: _torch_f().softplus(x * 3, beta=2, threshold=4),
        [(4, 7)],
    ),
    "elu": (lambda x: F.elu(x, 0.6), lambda x: _torch_f().elu(x, 0.6), [(4, 7)]),
    "normalize": (F.normalize, lambda x: _torch_f().normalize(x), [(3, 4, 2)]),
    "normalize p=1 dim -1": (
        lambda x: F.normalize(x, p=1, dim=-1),
        lambda x: _torch_f().normalize(x, p=1, dim=-1),
        [(3, 4)],
    ),
    "cosine_similarity": (
        F.cosine_similarity,
        lambda a, b: _torch_f().cosine_similarity(a, b),
        [(3, 4, 2), (3, 4, 2)],
    ),
    "cosine_similarity broadcast dim -1": (
        lambda a, b: F.cosine_similarity(a, b, dim=-1),
        lambda a, b: _torch_f().cosine_similarity(a, b, dim=-1),
        [(3, 4), (4,)],
    ),
    "sdpa": (
        F.scaled_dot_product_attention,
        lambda q, k, v: _torch_f().scaled_dot_product_attention(q, k, v),
        [(2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3)],
    ),
    "sdpa causal scale": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.2),
        lambda q, k, v: _torch_f().scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.2),
        [(2, 5, 4), (2, 5, 4), (2, 5, 3)],
    ),
    "l1_loss": (F.l1_loss, lambda a, t: _torch_f().l1_loss(a, t), [(4, 3), (4, 3)]),
    "l1_loss none": (
        lambda a, t: F.l1_loss(a, t, reduction="none"),
        lambda a, t: _torch_f().l1_loss(a, t, reduction="none"),
        [(4, 3), (4, 3)],
    ),
    "smooth_l1_loss": (
        F.smooth_l1_loss,
        lambda a, t: _torch_f().smooth_l1_loss(a, t),
        [(5, 3), (5, 3)],
    ),
    "smooth_l1_loss beta 0.3 sum": (
        lambda a, t: F.smooth_l1_loss(a, t, reduction="sum", beta=0.3),
        lambda a, t: _torch_f().smooth_l1_loss(a, t, reduction="sum", beta=0.3),
        [(5, 3), (5, 3)],
    ),
    "smooth_l1_loss beta 0": (
        lambda a, t: F.smooth_l1_loss(a, t, beta=0.0),
        lambda a, t: _torch_f().smooth_l1_loss(a, t, beta=0.0),
        [(5, 3), (5, 3)],
    ),
    "huber_loss delta 0.7 none": (
        lambda a, t: F.huber_loss(a, t, reduction="none", delta=0.7),
        lambda a, t: _torch_f().huber_loss(a, t, reduction="none", delta=0.7),
        [(5, 3), (5, 3)],
    ),
    "huber_loss": (F.huber_loss, lambda a, t: _torch_f().huber_loss(a, t), [(5, 3), (5, 3)]),
    "kl_div log_target": (
        lambda x, t: F.kl_div(x, t, reduction="batchmean", log_target=True),
        lambda x, t: _torch_f().kl_div(x, t, reduction="batchmean", log_target=True),
        [(4, 3), (4, 3)],
    ),
    "kl_div log_target none": (
        lambda x, t: F.kl_div(x, t, reduction="none", log_target=True),
        lambda x, t: _torch_f().kl_div(x, t, reduction="none", log_target=True),
        [(4, 3), (4, 3)],
    ),
    "triplet_margin_loss": (
        F.triplet_margin_loss,
        lambda a, p, n: _torch_f().triplet_margin_loss(a, p, n),
        [(6, 4), (6, 4), (6, 4)],
    ),
    "triplet_margin_loss p=1 swap margin none": (
        lambda a, p, n: F.triplet_margin_loss(a, p, n, 2.0, p=1, swap=True, reduction="none"),
        lambda a, p, n: _torch_f().triplet_margin_loss(
            a, p, n, 2.0, p=1, swap=True, reduction="none"
        ),
        [(6, 4), (6, 4), (6, 4)],
    ),
    "triplet_margin_loss unbatched sum": (
        lambda a, p, n: F.triplet_margin_loss(a, p, n, reduction="sum"),
        lambda a, p, n: _torch_f().triplet_margin_loss(a, p, n, reduction="sum"),
        [(4,), (4,), (4,)],
    ),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function_values_and_gradients_match_pytorch(name):
    md_fn, torch_fn, shapes = FUNCTIONS[name]
    rng = _rng(3)
    _compare_function(md_fn, torch_fn, [rng.standard_normal(s) for s in shapes])


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
def test_kl_div_with_probability_targets_and_zeros_matches_pytorch(reduction):
    torch = pytest.importorskip("torch")
    rng = _rng(4)
    x = np.log(rng.dirichlet(np.ones(5), size=3))
    t = rng.dirichlet(np.ones(5), size=3)
    t[0, 1] = 0.0  # t log t = 0 there
    ours = md.tensor(x, dtype=md.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out = F.kl_div(ours, md.tensor(t, dtype=md.float64), reduction=reduction)
    expected = torch.nn.functional.kl_div(theirs, torch.tensor(t), reduction=reduction)
    _close(out, expected)
    g = _rng(5).standard_normal(tuple(expected.shape))
    out.backward(md.tensor(g, dtype=md.float64))
    expected.backward(torch.tensor(g))
    _close(ours.grad, theirs.grad)


def test_kl_div_gradient_with_respect_to_a_positive_target_matches_pytorch():
    rng = _rng(6)
    x, t = rng.standard_normal((3, 4)), rng.uniform(0.1, 1.0, (3, 4))
    _compare_function(
        lambda a, b: F.kl_div(a, b, reduction="sum"),
        lambda a, b: _torch_f().kl_div(a, b, reduction="sum"),
        [x, t],
    )


@pytest.mark.parametrize("mask_kind", ["bool", "float", "bool broadcast over heads", "dead row"])
def test_sdpa_masks_match_pytorch(mask_kind):
    torch = pytest.importorskip("torch")
    rng = _rng(7)
    shapes = [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 2)]
    arrays = [rng.standard_normal(s) for s in shapes]
    if mask_kind == "float":
        mask = rng.standard_normal((4, 6))
        mask[1, 2] = -np.inf
    elif mask_kind == "bool broadcast over heads":
        mask = rng.random((2, 1, 4, 6)) < 0.7
        mask[..., 0] = True
    else:
        mask = rng.random((4, 6)) < 0.6
        mask[:, 0] = True
        if mask_kind == "dead row":
            mask[2] = False  # PyTorch gives zeros for a query that sees no key
    _compare_function(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=md.Tensor(mask)),
        lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=torch.tensor(mask)
        ),
        arrays,
    )


def test_sdpa_formula_is_softmax_of_scaled_scores_times_values():
    rng = _rng(8)
    q, k, v = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    scores = q @ k.T / 2.0
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    out = F.scaled_dot_product_attention(*(md.tensor(a, dtype=md.float64) for a in (q, k, v)))
    np.testing.assert_allclose(out.numpy(), w @ v, rtol=1e-12)


def test_normalize_leaves_a_zero_vector_zero_with_pytorchs_gradient():
    x = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
    _compare_function(F.normalize, lambda t: _torch_f().normalize(t), [x])


def test_cosine_similarity_of_a_vector_below_eps_matches_pytorch():
    a = np.array([[1e-10, 0.0], [1.0, 2.0]])
    b = np.array([[1.0, 1.0], [3.0, 1.0]])
    _compare_function(
        lambda x, y: F.cosine_similarity(x, y, eps=1e-8),
        lambda x, y: _torch_f().cosine_similarity(x, y, eps=1e-8),
        [a, b],
    )


def test_embedding_values_and_gradient_match_pytorch_and_padding_row_gets_none():
    torch = pytest.importorskip("torch")
    rng = _rng(9)
    w = rng.standard_normal((6, 3))
    index = np.array([[0, 2, 2, 5], [1, 2, 1, 0]])
    ours = md.tensor(w, dtype=md.float64, requires_grad=True)
    theirs = torch.tensor(w, requires_grad=True)
    out = F.embedding(md.tensor(index), ours, padding_idx=2)
    expected = torch.nn.functional.embedding(torch.tensor(index), theirs, padding_idx=2)
    _close(out, expected)
    g = rng.standard_normal(tuple(expected.shape))
    out.backward(md.tensor(g, dtype=md.float64))
    expected.backward(torch.tensor(g))
    _close(ours.grad, theirs.grad)
    assert not ours.grad.numpy()[2].any()


def test_embedding_rejects_an_index_out_of_range():
    with pytest.raises(IndexError, match="index 7 is out of range for 6"):
        F.embedding(md.tensor([1, 7]), md.randn(6, 3))


def test_one_hot_matches_pytorch():
    torch = pytest.importorskip("torch")
    t = np.array([[0, 3], [2, 1]])
    for n in (-1, 6):
        out = F.one_hot(md.tensor(t), n)
        expected = torch.nn.functional.one_hot(torch.tensor(t), n)
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out.numpy(), expected.numpy())
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.one_hot(md.tensor(t), 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"weight": True},
        {"ignore_index": 1},
        {"label_smoothing": 0.2},
        {"weight": True, "ignore_index": 0, "label_smoothing": 0.1},
    ],
    ids=["plain", "weight", "ignore_index", "label_smoothing", "all three"],
)
def test_cross_entropy_options_match_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    rng = _rng(10)
    logits, target = rng.standard_normal((6, 4, 3)), rng.integers(0, 4, (6, 3))
    weight = rng.uniform(0.5, 2.0, 4)
    ours_kw = dict(kwargs)
    theirs_kw = dict(kwargs)
    if kwargs.get("weight"):
        ours_kw["weight"] = md.tensor(weight, dtype=md.float64)
        theirs_kw["weight"] = torch.tensor(weight)
    _compare_function(
        lambda z: F.cross_entropy(z, md.tensor(target), **ours_kw),
        lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(target), **theirs_kw),
        [logits],
    )


# ----------------------------------------------------------------------- modules


def _copy_into(ours, theirs):
    """Load the torch module's weights into the minideep one (made float64 first)."""
    theirs.double()
    ours.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _same_keys_and_shapes(ours, theirs):
    a = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    b = [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert a == b


def _compare_modules(ours, theirs, inputs, call=None, seed=11):
    """Same outputs (the first if a tuple) and the same gradients of inputs and parameters."""
    torch = pytest.importorskip("torch")
    call = call or (lambda m, *xs: m(*xs))
    md_in = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in inputs]
    torch_in = [torch.tensor(a, requires_grad=True) for a in inputs]
    out, expected = call(ours, *md_in), call(theirs, *torch_in)
    if isinstance(expected, tuple):
        for o, e in zip(out, expected):
            assert (o is None) == (e is None)
            if e is not None:
                _close(o, e)
        out, expected = out[0], expected[0]
    _close(out, expected)
    g = _rng(seed).standard_normal(tuple(expected.shape))
    out.backward(md.tensor(g, dtype=md.float64))
    expected.backward(torch.tensor(g))
    for a, b in zip(md_in, torch_in):
        _close(a.grad, b.grad)
    grads = {k: p.grad for k, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        _close(p.grad, grads[name])


def _torch_nn():
    return pytest.importorskip("torch").nn


SIMPLE_MODULES = {
    "LayerNorm": (lambda m: m.LayerNorm(6), (3, 4, 6)),
    "LayerNorm 2-d shape no bias": (lambda m: m.LayerNorm((4, 6), eps=1e-4, bias=False), (3, 4, 6)),
    "LayerNorm no affine": (lambda m: m.LayerNorm(6, elementwise_affine=False), (3, 6)),
    "GroupNorm": (lambda m: m.GroupNorm(2, 6), (3, 6, 4)),
    "GroupNorm no affine": (lambda m: m.GroupNorm(3, 6, affine=False), (2, 6, 2, 2)),
    "GELU": (lambda m: m.GELU(), (3, 5)),
    "GELU tanh": (lambda m: m.GELU(approximate="tanh"), (3, 5)),
    "SiLU": (lambda m: m.SiLU(), (3, 5)),
    "Softplus": (lambda m: m.Softplus(beta=0.5, threshold=1.0), (3, 5)),
    "ELU": (lambda m: m.ELU(alpha=0.3), (3, 5)),
    "Identity": (lambda m: m.Identity(54, unused="argument"), (3, 5)),
}


@pytest.mark.parametrize("name", list(SIMPLE_MODULES))
def test_simple_module_matches_pytorch(name):
    build, shape = SIMPLE_MODULES[name]
    theirs = build(_torch_nn())
    ours = build(nn)
    _same_keys_and_shapes(ours, theirs)
    rng = _rng(12)
    for p in theirs.parameters():  # not the initial ones and zeros
        p.data.normal_()
    _copy_into(ours, theirs)
    _compare_modules(ours, theirs, [rng.standard_normal(shape)])


def test_layer_norm_and_group_norm_initialise_like_pytorch():
    ln, gn = nn.LayerNorm((2, 3)), nn.GroupNorm(2, 4)
    for m in (ln, gn):
        assert (m.weight.numpy() == 1).all() and (m.bias.numpy() == 0).all()
    assert ln.weight.shape == (2, 3)
    assert repr(ln) == "LayerNorm((2, 3), eps=1e-05, elementwise_affine=True)"


@pytest.mark.parametrize(
    "name, ours_fn, torch_name, kwargs",
    [
        ("l1", lambda a, t: F.l1_loss(a, t), "L1Loss", {}),
        ("smooth l1", lambda a, t: F.smooth_l1_loss(a, t, beta=0.4), "SmoothL1Loss", {"beta": 0.4}),
    ],
)
def test_loss_modules_match_pytorch(name, ours_fn, torch_name, kwargs):
    torch = pytest.importorskip("torch")
    rng = _rng(13)
    a, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    theirs = getattr(torch.nn, torch_name)(**kwargs)(torch.tensor(a), torch.tensor(t))
    ours = getattr(nn, torch_name)(**kwargs)
    _close(ours(md.tensor(a, dtype=md.float64), md.tensor(t, dtype=md.float64)), theirs)
    _close(ours_fn(md.tensor(a, dtype=md.float64), md.tensor(t, dtype=md.float64)), theirs)


def test_embedding_module_matches_pytorch_and_initialises_like_it():
    torch = pytest.importorskip("torch")
    md.manual_seed(0)
    ours = nn.Embedding(400, 50, padding_idx=3)
    w = ours.weight.numpy()
    assert not w[3].any()
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02
    theirs = torch.nn.Embedding(10, 4, padding_idx=-1)
    ours = nn.Embedding(10, 4, padding_idx=-1)
    assert ours.padding_idx == theirs.padding_idx == 9
    _same_keys_and_shapes(ours, theirs)
    _copy_into(ours, theirs)
    index = np.array([[1, 9, 9], [0, 2, 1]])
    out, expected = ours(md.tensor(index)), theirs(torch.tensor(index))
    _close(out, expected)
    g = _rng(14).standard_normal(tuple(expected.shape))
    out.backward(md.tensor(g, dtype=md.float64))
    expected.backward(torch.tensor(g))
    _close(ours.weight.grad, theirs.weight.grad)


def test_dropout2d_zeroes_whole_channels_and_is_the_identity_in_eval():
    md.manual_seed(0)
    drop = nn.Dropout2d(0.5)
    x = md.ones(8, 16, 3, 3, dtype=md.float64)
    y = drop(x).numpy()
    per_channel = y.reshape(8, 16, -1)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7
    drop.eval()
    assert drop(x) is x


def test_module_dict_registers_its_modules_like_pytorch():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleDict({"proj": nn.Linear(3, 2), "norm": nn.LayerNorm(2)})
    theirs = torch.nn.ModuleDict({"proj": torch.nn.Linear(3, 2), "norm": torch.nn.LayerNorm(2)})
    _same_keys_and_shapes(ours, theirs)
    ours["act"] = nn.GELU()
    assert list(ours) == ["proj", "norm", "act"] and "act" in ours and len(ours) == 3
    assert isinstance(ours.pop("proj"), nn.Linear)
    assert list(ours.keys()) == ["norm", "act"]
    assert list(ours.state_dict()) == ["norm.weight", "norm.bias"]


# ----------------------------------------------------------------------- attention modules


def _mha_pair(bias=True, batch_first=False, dropout=0.0):
    theirs = _torch_nn().MultiheadAttention(
        6, 3, dropout=dropout, bias=bias, batch_first=batch_first
    )
    ours = nn.MultiheadAttention(6, 3, dropout=dropout, bias=bias, batch_first=batch_first)
    _same_keys_and_shapes(ours, theirs)
    for p in theirs.parameters():  # non-zero biases too
        p.data.normal_(0, 0.5)
    _copy_into(ours, theirs)
    return ours, theirs


def test_multihead_attention_initialises_like_pytorch():
    md.manual_seed(0)
    mha = nn.MultiheadAttention(64, 4)
    bound = math.sqrt(6 / (64 + 3 * 64))
    w = mha.in_proj_weight.numpy()
    assert w.shape == (192, 64) and np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not mha.in_proj_bias.numpy().any() and not mha.out_proj.bias.numpy().any()
    assert np.abs(mha.out_proj.weight.numpy()).max() <= 1 / 8  # Linear's U(-1/sqrt(E), ...)
    _same_keys_and_shapes(
        nn.MultiheadAttention(8, 2, bias=False), _torch_nn().MultiheadAttention(8, 2, bias=False)
    )


def _masks(kind, rng, n=2, heads=3, length=4, source=5):
    """(attn_mask, key_padding_mask) in PyTorch's MHA convention (True = may not attend)."""
    attn = padding = None
    if "padding" in kind:
        padding = rng.random((n, source)) < 0.4
        padding[:, 0] = False
        if "float padding" in kind:
            padding = np.where(padding, -np.inf, rng.standard_normal((n, source)))
    if "bool attn" in kind:
        attn = rng.random((length, source)) < 0.4
        attn[:, 1] = False
    if "float attn" in kind:
        attn = rng.standard_normal((length, source))
    if "3-d attn" in kind:
        attn = rng.random((n * heads, length, source)) < 0.4
        attn[..., 1] = False
    return attn, padding


MHA_CASES = [
    "plain",
    "bool padding",
    "float padding",
    "bool attn",
    "float attn",
    "3-d attn",
    "bool attn bool padding",
    "float attn float padding",
]


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq first", "batch first"])
@pytest.mark.parametrize("kind", MHA_CASES)
def test_multihead_attention_self_attention_matches_pytorch(kind, batch_first):
    torch = pytest.importorskip("torch")
    ours, theirs = _mha_pair(batch_first=batch_first)
    rng = _rng(15)
    attn, padding = _masks(kind, rng, source=4)
    x = rng.standard_normal((2, 4, 6) if batch_first else (4, 2, 6))

    def call(m, t):
        as_mask = md.Tensor if m is ours else torch.tensor
        out, w = m(
            t,
            t,
            t,
            key_padding_mask=None if padding is None else as_mask(padding),
            attn_mask=None if attn is None else as_mask(attn),
        )
        return out, w

    _compare_modules(ours, theirs, [x], call)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_multihead_attention_cross_attention_and_weights_match_pytorch(need_weights, average, bias):
    torch = pytest.importorskip("torch")
    ours, theirs = _mha_pair(bias=bias)
    rng = _rng(16)
    attn, padding = _masks("bool attn bool padding", rng)
    q, k, v = (rng.standard_normal(s) for s in ((4, 2, 6), (5, 2, 6), (5, 2, 6)))

    def call(m, a, b, c):
        as_mask = md.Tensor if m is ours else torch.tensor
        return m(
            a,
            b,
            c,
            key_padding_mask=as_mask(padding),
            need_weights=need_weights,
            attn_mask=as_mask(attn),
            average_attn_weights=average,
        )

    _compare_modules(ours, theirs, [q, k, v], call)
    out, weights = call(ours, *(md.tensor(a, dtype=md.float64) for a in (q, k, v)))
    if need_weights:
        assert weights.shape == ((2, 4, 5) if average else (2, 3, 4, 5))
    else:
        assert weights is None


def test_multihead_attention_unbatched_matches_pytorch():
    torch = pytest.importorskip("torch")
    ours, theirs = _mha_pair()
    rng = _rng(17)
    padding = np.array([0.0, -np.inf, 0.5, 0.0, -np.inf])
    attn = rng.standard_normal((3, 4, 5))

    def call(m, a, b, c):
        as_mask = md.Tensor if m is ours else torch.tensor
        return m(
            a,
            b,
            c,
            key_padding_mask=as_mask(padding),
            attn_mask=as_mask(attn),
            average_attn_weights=False,
        )

    _compare_modules(ours, theirs, [rng.standard_normal(s) for s in ((4, 6), (5, 6), (5, 6))], call)


def test_multihead_attention_is_causal_needs_the_mask():
    mha = nn.MultiheadAttention(4, 2)
    x = md.randn(3, 1, 4)
    with pytest.raises(ValueError, match="is_causal"):
        mha(x, x, x, is_causal=True)


# ----------------------------------------------------------------------- encoder


def _layer_pair(**kwargs):
    theirs = _torch_nn().TransformerEncoderLayer(8, 2, 16, **kwargs)
    ours = nn.TransformerEncoderLayer(8, 2, 16, **kwargs)
    _same_keys_and_shapes(ours, theirs)
    for p in theirs.parameters():
        p.data.normal_(0, 0.5)
    _copy_into(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("mode", ["eval", "train dropout 0"])
def test_transformer_encoder_layer_matches_pytorch(norm_first, activation, mode):
    torch = pytest.importorskip("torch")
    dropout = 0.1 if mode == "eval" else 0.0
    ours, theirs = _layer_pair(
        dropout=dropout, activation=activation, norm_first=norm_first, batch_first=True
    )
    if mode == "eval":
        ours.eval(), theirs.eval()
    rng = _rng(18)
    padding = rng.random((3, 5)) < 0.3
    padding[:, 0] = False
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)

    def call(m, x):
        as_mask = md.Tensor if m is ours else torch.tensor
        return m(x, src_mask=as_mask(causal), src_key_padding_mask=as_mask(padding))

    _compare_modules(ours, theirs, [rng.standard_normal((3, 5, 8))], call)


def test_transformer_encoder_layer_with_a_callable_activation_sequence_first():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.TransformerEncoderLayer(8, 4, 12, dropout=0.0, activation=torch.tanh)
    ours = nn.TransformerEncoderLayer(8, 4, 12, dropout=0.0, activation=md.tanh)
    _copy_into(ours, theirs)
    _compare_modules(ours, theirs, [_rng(19).standard_normal((5, 2, 8))])


def test_transformer_encoder_matches_pytorch():
    torch = pytest.importorskip("torch")
    torch_layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    theirs = torch.nn.TransformerEncoder(
        torch_layer, 3, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False
    )
    ours = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 3, norm=nn.LayerNorm(8)
    )
    _same_keys_and_shapes(ours, theirs)
    assert list(ours.state_dict())[0] == "layers.0.self_attn.in_proj_weight"
    for p in theirs.parameters():
        p.data.normal_(0, 0.5)
    _copy_into(ours, theirs)
    rng = _rng(20)
    mask = rng.standard_normal((6, 6))

    def call(m, x):
        return m(x, mask=(md.tensor(mask, dtype=md.float64) if m is ours else torch.tensor(mask)))

    _compare_modules(ours, theirs, [rng.standard_normal((6, 2, 8))], call)


def test_transformer_encoder_layers_are_independent_copies():
    layer = nn.TransformerEncoderLayer(4, 2, 8)
    encoder = nn.TransformerEncoder(layer, 2)
    a, b = encoder.layers[0].linear1.weight, encoder.layers[1].linear1.weight
    assert a is not b and a is not layer.linear1.weight
    np.testing.assert_array_equal(a.numpy(), b.numpy())
