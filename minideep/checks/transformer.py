"""Gradient checks of the transformer vocabulary: layer and group normalisation, the
smooth activations (and erf), embeddings, vector normalisation, attention, multi-head
attention and the encoder layer, and the regression, divergence and triplet losses.
Inputs stay away from kinks (|x| = 0 for l1, beta x = threshold for softplus)."""

import numpy as np

import minideep as md
from minideep import nn
from minideep.nn import functional as F
from minideep.ops.activation import erf

from . import Case, constant, integers, mask, positive, randn, uniform

_modules = {}


def _module(name: str, build):
    """A small float64 module in eval mode, built once with fixed weights (drawn from
    its own generator, so that building it leaves minideep's seed alone)."""
    if name not in _modules:
        module = build().double().eval()
        rng = np.random.default_rng(1)
        module.load_state_dict(
            {k: rng.standard_normal(v.shape) * 0.5 for k, v in module.state_dict().items()}
        )
        _modules[name] = module
    return _modules[name]


def _mha(q, k, v, m):
    mha = _module("mha", lambda: nn.MultiheadAttention(4, 2))
    out, weights = mha(q, k, v, key_padding_mask=m.data, need_weights=True)
    return out, weights


def _encoder_layer(x):
    layer = _module(
        "encoder",
        lambda: nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation="gelu"),
    )
    return layer(x)


def _key_padding(m):
    """A key padding mask of shape (2, 3) that never hides every key of a sequence."""
    data = m.data.copy()
    data[:, 0] = False
    return md.Tensor(data)


def _causal_float_mask(q):
    return md.Tensor(np.triu(np.full((q.shape[-2], q.shape[-2]), -np.inf), 1))


def _dead_row_mask():
    keep = np.ones((3, 4), dtype=bool)
    keep[1] = False  # query 1 sees no key: zero weights, zero gradient
    keep[2, :2] = False
    return md.Tensor(keep)


_PADDING_ROW_ZERO = np.array([[1.0], [0.0], [1.0], [1.0], [1.0]])

CASES = [
    # normalisation
    Case(
        "layer_norm affine",
        lambda x, w, b: F.layer_norm(x, (4,), w, b),
        [randn(2, 3, 4), randn(4), randn(4)],
    ),
    Case("layer_norm 2 dims, no affine", lambda x: F.layer_norm(x, (3, 4)), [randn(2, 3, 4)]),
    Case(
        "group_norm",
        lambda x, w, b: F.group_norm(x, 2, w, b),
        [randn(2, 4, 3), randn(4), randn(4)],
    ),
    Case("normalize p=2", lambda x: F.normalize(x, dim=1), [randn(3, 4)]),
    Case("normalize p=1 dim 0", lambda x: F.normalize(x, p=1, dim=0), [randn(3, 4)]),
    Case(
        "cosine_similarity broadcast",
        lambda a, b: F.cosine_similarity(a, b, dim=-1),
        [randn(3, 4), randn(4)],
    ),
    # activations
    Case("erf", lambda a: erf(a * 2), [randn(3, 5)]),
    Case("gelu", lambda a: F.gelu(a * 2), [randn(3, 5)]),
    Case("gelu tanh", lambda a: F.gelu(a * 2, approximate="tanh"), [randn(3, 5)]),
    Case("silu", lambda a: F.silu(a * 3), [randn(3, 5)]),
    Case("softplus beta 2 threshold 3", lambda a: F.softplus(a, 2, 3), [uniform(-3, 3, 4, 5)]),
    Case("elu alpha 0.7", lambda a: F.elu(a, 0.7), [randn(3, 5)]),
    # embeddings
    Case("embedding", lambda w, i: F.embedding(i, w), [randn(5, 3), integers(5, 2, 4)]),
    Case(  # the padding row gets no gradient: here it is zero, so that is the true one
        "embedding padding_idx",
        lambda w, i: F.embedding(i, w * _PADDING_ROW_ZERO, padding_idx=1),
        [randn(5, 3), integers(5, 2, 4)],
    ),
    # attention
    Case(
        "sdpa",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
        [randn(2, 3, 4), randn(2, 5, 4), randn(2, 5, 2)],
    ),
    Case(
        "sdpa causal scale",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3),
        [randn(2, 4, 3), randn(2, 4, 3), randn(2, 4, 2)],
    ),
    Case(
        "sdpa bool mask with a dead row",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=_dead_row_mask()),
        [randn(2, 3, 2), randn(2, 4, 2), randn(2, 4, 3)],
    ),
    Case(
        "sdpa float mask",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=_causal_float_mask(q)),
        [randn(1, 2, 3, 2), randn(1, 2, 3, 2), randn(1, 2, 3, 2)],
    ),
    Case(
        "multihead attention key padding",
        lambda q, k, v, m: _mha(q, k, v, _key_padding(m)),
        [randn(2, 2, 4), randn(3, 2, 4), randn(3, 2, 4), mask(2, 3)],
    ),
    Case("transformer encoder layer gelu", _encoder_layer, [randn(3, 2, 4)]),
    # losses
    Case("l1_loss", lambda a, t: F.l1_loss(a, t), [randn(3, 4), randn(3, 4)]),
    Case(
        "l1_loss sum",
        lambda a, t: F.l1_loss(a, t, reduction="sum"),
        [randn(3, 4), constant(3, 4)],
    ),
    Case(
        "smooth_l1_loss beta 0.5",
        lambda a, t: F.smooth_l1_loss(a, t, beta=0.5),
        [randn(4, 3), randn(4, 3)],
    ),
    Case(
        "huber_loss delta 0.8 none",
        lambda a, t: F.huber_loss(a, t, reduction="none", delta=0.8),
        [randn(4, 3), randn(4, 3)],
    ),
    Case(
        "kl_div batchmean",
        lambda x, t: F.kl_div(x, t, reduction="batchmean"),
        [randn(3, 4), positive(3, 4)],
    ),
    Case(
        "kl_div zero targets",
        lambda x, t: F.kl_div(x, t.clamp(min=0), reduction="sum"),
        [randn(3, 4), constant(3, 4)],
    ),
    Case(
        "kl_div log_target none",
        lambda x, t: F.kl_div(x, t, reduction="none", log_target=True),
        [randn(3, 4), randn(3, 4)],
    ),
    Case(
        "triplet_margin_loss",
        lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0),
        [randn(4, 3), randn(4, 3), randn(4, 3)],
    ),
    Case(
        "triplet_margin_loss p=1 swap",
        lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0, p=1, swap=True),
        [randn(4, 3), randn(4, 3), randn(4, 3)],
    ),
]
