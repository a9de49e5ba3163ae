"""Bilinear grid_sample and the attention weights as one Function each, against the
reference compositions (fast paths off).

* ``BilinearGridSample`` (``fast/sampling.py``): the same arithmetic in the same order
  forward and for the x gradient (equal to the bit); the grid gradient sums in another
  order (equal to rounding);
* ``SoftmaxScores`` (``fast/attention.py``): the same forward (to the bit); the backward's
  row sums run in another order (rounding).

With ``create_graph=True`` both run the reference's backward on its graph, so second
derivatives agree with the reference too.
"""

import numpy as np
import pytest

import minideep as md
from minideep import nn
from minideep.fast.attention import SoftmaxScores, row_max
from minideep.fast.sampling import BilinearGridSample
from minideep.nn import functional as F

TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _t(a, requires_grad=True):
    return md.tensor(a, dtype=a.dtype, requires_grad=requires_grad)


def run_both(fn, arrays, wants=None, upstream_seed=1):
    """Output and the input gradients of ``fn`` with the fast paths on, then off; the node
    type of the output each time."""
    wants = wants or [True] * len(arrays)
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            inputs = [_t(a, w) for a, w in zip(arrays, wants)]
            md.manual_seed(0)  # the same dropout draws on both paths
            out = fn(*inputs)
            rng = np.random.default_rng(upstream_seed)
            out.backward(_t(rng.standard_normal(out.shape).astype(out.dtype), False))
            grads = [t.grad.numpy() for t, w in zip(inputs, wants) if w]
            results.append(([out.numpy()] + grads, out))
    return results


def _close(fast, reference, tol):
    for a, b in zip(fast, reference):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


def _graph_types(out):
    seen, stack, found = set(), [out._ctx], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        found.add(type(node))
        stack.extend(t._ctx for t in node.inputs if isinstance(t, md.Tensor))
    return found


# ----------------------------------------------------------------------- grid_sample

GRID_CASES = [  # x shape, grid shape, grid range (beyond 1: points outside the input)
    ((2, 3, 5, 7), (2, 4, 6, 2), 1.3),
    ((1, 1, 4, 4), (1, 3, 5, 2), 1.0),  # batch 1, one channel
    ((3, 5, 9, 1), (3, 2, 7, 2), 2.0),  # a one-pixel-wide input, most points outside
    ((2, 4, 16, 12), (2, 16, 12, 2), 0.9),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("case", GRID_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_grid_sample_matches_the_reference(case, dtype, padding_mode, align_corners):
    x_shape, grid_shape, spread = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    grid = rng.uniform(-spread, spread, grid_shape).astype(dtype)
    grid[0, 0, 0] = [1.0, -1.0]  # exactly on the corners and on a pixel centre
    grid[0, 0, 1] = [0.0, 0.0]

    def fn(x, g):
        return F.grid_sample(x, g, padding_mode=padding_mode, align_corners=align_corners)

    (fast, out), (reference, ref_out) = run_both(fn, [x, grid])
    assert BilinearGridSample in _graph_types(out)
    assert BilinearGridSample not in _graph_types(ref_out)
    np.testing.assert_array_equal(fast[0], reference[0])  # forward: the same bits
    np.testing.assert_array_equal(fast[1], reference[1])  # dx: the same bincounts
    _close(fast[2:], reference[2:], TOL[dtype])  # dgrid: sums in another order


@pytest.mark.parametrize("wants", [(True, False), (False, True)], ids=["x", "grid"])
def test_grid_sample_with_one_input_wanting_a_gradient(wants):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 5))
    grid = rng.uniform(-1.2, 1.2, (2, 3, 4, 2))
    fast, reference = run_both(F.grid_sample, [x, grid], wants)
    _close(fast[0], reference[0], TOL[np.float64])


def test_grid_sample_of_non_contiguous_inputs():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)
    grid = rng.uniform(-1.1, 1.1, (2, 5, 7, 4)).astype(np.float32)
    (fast, _), (reference, _) = run_both(
        lambda x, g: F.grid_sample(x.permute(0, 3, 2, 1), g[..., 1:3]), [x, grid]
    )
    np.testing.assert_array_equal(fast[0], reference[0])
    np.testing.assert_array_equal(fast[1], reference[1])
    _close(fast[2:], reference[2:], TOL[np.float32])


def test_grid_sample_nearest_and_3d_keep_the_reference():
    rng = np.random.default_rng(3)
    x = _t(rng.standard_normal((1, 2, 3, 4)))
    grid = _t(rng.uniform(-1, 1, (1, 2, 2, 2)))
    assert BilinearGridSample not in _graph_types(F.grid_sample(x, grid, mode="nearest"))
    x3 = _t(rng.standard_normal((1, 2, 3, 4, 2)))
    grid3 = _t(rng.uniform(-1, 1, (1, 2, 2, 2, 3)))
    assert BilinearGridSample not in _graph_types(F.grid_sample(x3, grid3))


# ----------------------------------------------------------------------- attention

SDPA_SHAPES = [  # query, key, value
    ((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4)),
    ((1, 1, 1, 3), (1, 1, 1, 3), (1, 1, 1, 2)),  # batch 1, one query, one key
    ((2, 7, 3), (2, 5, 3), (2, 5, 6)),  # L != S, odd sizes
    ((3, 2, 6, 8), (1, 2, 4, 8), (1, 2, 4, 8)),  # keys broadcast over the batch
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal", "dead row", "scale"])
@pytest.mark.parametrize("shapes", SDPA_SHAPES, ids=lambda s: "x".join(map(str, s[0])))
def test_scaled_dot_product_attention_matches_the_reference(shapes, mask, dtype):
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in shapes)
    length, source = q.shape[-2], k.shape[-2]
    kwargs = {}
    if mask == "bool":
        kwargs["attn_mask"] = md.tensor(rng.random((length, source)) < 0.7)
    elif mask == "dead row":  # the first query may look at no key: zero weights
        allowed = rng.random((length, source)) < 0.7
        allowed[0] = False
        allowed[-1, 0] = True
        kwargs["attn_mask"] = md.tensor(allowed)
    elif mask == "float":
        kwargs["attn_mask"] = md.tensor(rng.standard_normal((length, source)), dtype=dtype)
    elif mask == "causal":
        kwargs["is_causal"] = True
    elif mask == "scale":
        kwargs["scale"] = 0.3

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, **kwargs)

    (fast, out), (reference, ref_out) = run_both(fn, [q, k, v])
    assert SoftmaxScores in _graph_types(out) and SoftmaxScores not in _graph_types(ref_out)
    np.testing.assert_array_equal(fast[0], reference[0])  # forward: the same bits
    _close(fast[1:], reference[1:], TOL[dtype])


def test_attention_gradient_reaches_a_float_mask_and_dropout_draws_the_same():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((2, 2, 5, 4)) for _ in range(3))
    m = rng.standard_normal((2, 1, 5, 5))  # broadcast over the heads

    def fn(q, k, v, m):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=0.3)

    (fast, _), (reference, _) = run_both(fn, [q, k, v, m])
    _close(fast, reference, TOL[np.float64])


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("masks", [False, True])
def test_multihead_attention_matches_the_reference(batch_first, need_weights, masks):
    rng = np.random.default_rng(6)
    md.manual_seed(0)
    m = nn.MultiheadAttention(8, 2, batch_first=batch_first, dtype=md.float64)
    x = rng.standard_normal((3, 5, 8) if batch_first else (5, 3, 8))
    kwargs = {}
    if masks:
        padding = rng.random((3, 5)) < 0.3
        padding[:, 0] = False
        kwargs = {
            "key_padding_mask": md.tensor(padding),
            "attn_mask": md.tensor(rng.standard_normal((5, 5))),
        }

    def fn(x):
        out, weights = m(x, x, x, need_weights=need_weights, **kwargs)
        return out if weights is None else out.sum() + (weights * weights).sum()

    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            m.zero_grad()
            xt = _t(x)
            fn(xt).sum().backward()
            results.append([xt.grad.numpy()] + [p.grad.numpy() for p in m.parameters()])
    _close(results[0], results[1], TOL[np.float64])


def test_multihead_cross_attention_matches_the_reference():
    rng = np.random.default_rng(7)
    md.manual_seed(0)
    m = nn.MultiheadAttention(6, 3, dtype=md.float64)
    q, kv = rng.standard_normal((4, 2, 6)), rng.standard_normal((7, 2, 6))
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            m.zero_grad()
            qt, kt = _t(q), _t(kv)
            out, w = m(qt, kt, kt)
            (out.sum() + w.sum()).backward()
            results.append([out.numpy(), qt.grad.numpy(), kt.grad.numpy()])
    _close(results[0], results[1], TOL[np.float64])


def test_row_max_is_the_maximum():
    rng = np.random.default_rng(8)
    for n in (1, 2, 6, 64, 7, 12):
        a = rng.standard_normal((3, 4, n)).astype(np.float32)
        np.testing.assert_array_equal(row_max(a), a.max(axis=-1, keepdims=True))


# ----------------------------------------------------------------------- second order


def _second_order(fn, arrays):
    """Gradient of (sum of the first-order gradients squared), fast paths on and off."""
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            inputs = [_t(a) for a in arrays]
            out = fn(*inputs)
            rng = np.random.default_rng(9)
            up = _t(rng.standard_normal(out.shape), False)
            grads = md.autograd.grad(out, inputs, up, create_graph=True)
            total = sum((g * g).sum() for g in grads)
            results.append([g.numpy() for g in md.autograd.grad(total, inputs)])
    return results


def test_second_order_gradients_of_grid_sample_match_the_reference():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 2, 4, 5))
    grid = rng.uniform(-1.2, 1.2, (2, 3, 3, 2))
    fast, reference = _second_order(
        lambda x, g: F.grid_sample(x, g, padding_mode="border"), [x, grid]
    )
    _close(fast, reference, 1e-10)


def test_second_order_gradients_of_attention_match_the_reference():
    rng = np.random.default_rng(11)
    q, k, v = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    fast, reference = _second_order(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v]
    )
    _close(fast, reference, 1e-10)


def test_small_shapes_stay_cheap():
    """A tiny attention and grid_sample run as one node each (no per-op overhead)."""
    q = _t(np.ones((1, 2, 3)))
    x, grid = _t(np.ones((1, 1, 2, 2))), _t(np.zeros((1, 1, 1, 2)))
    with md.fast_paths(True):
        assert len(_graph_types(F.scaled_dot_product_attention(q, q, q))) <= 2
        assert _graph_types(F.grid_sample(x, grid)) == {BilinearGridSample}
