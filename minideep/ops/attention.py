"""Scaled dot-product attention, composed of differentiable ops.

    attention(Q, K, V) = softmax(Q K^T / sqrt(d) + M) V

Q: (..., L, d) queries, K: (..., S, d) keys, V: (..., S, d_v) values, M: (L, S) or
broadcast against (..., L, S) an additive mask (0 where a key takes part, -inf where it
does not). Each query's row of weights is a probability distribution over the keys.
Being a composition (two matrix products, a scale, a softmax), it is differentiable to
any order without a backward of its own. (On the CPU the weights are one Function,
``fast/attention.py``; a gradient of its gradient is this composition's.)
"""

from __future__ import annotations

import math

from .. import fast
from ..tensor import Tensor
from .activation import softmax
from .dropout import dropout
from .math import where


def additive_mask(mask, allowed_when: bool, like: Tensor):
    """A boolean mask -> a float one: 0 where a key takes part, -inf where it does not.

    ``allowed_when`` is the boolean value meaning "takes part": True for
    ``scaled_dot_product_attention``, False for ``MultiheadAttention``'s masks
    (PyTorch's two conventions). A float mask is returned as it is.
    """
    if mask is None:
        return None
    data = mask.data if isinstance(mask, Tensor) else mask
    if data.dtype.kind != "b":
        return mask if isinstance(mask, Tensor) else Tensor(data)
    xp = like.xp
    take_part = data if allowed_when else ~data
    return Tensor(xp.where(take_part, 0.0, -xp.inf).astype(like.dtype))


def attention_weights(
    query: Tensor, key: Tensor, mask: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """softmax(Q K^T * scale + M) along the keys: (..., L, d), (..., S, d) -> (..., L, S).

    ``mask``: an additive float mask (see :func:`additive_mask`); scale defaults to
    1/sqrt(d). A query whose every key is masked gets all-zero weights (not 0/0), as
    PyTorch's scaled_dot_product_attention gives.
    """
    if scale is None:
        scale = 1 / math.sqrt(query.shape[-1])
    mask_data = getattr(mask, "data", mask)
    one_function = fast.attention.attention_weights(query.data, key.data, mask_data)
    if one_function:  # the whole softmax of the scores, in place: fast/attention.py
        return one_function.apply(query, key, mask, scale)
    scores = (query * scale) @ key.swapaxes(-1, -2)
    if mask is None:
        return softmax(scores, -1)
    scores = scores + mask
    xp = scores.xp
    dead = xp.isneginf(scores.data).all(axis=-1, keepdims=True)  # every key masked out
    if not dead.any():
        return softmax(scores, -1)
    return where(dead, 0.0, softmax(where(dead, 0.0, scores), -1))


def _causal_mask(query: Tensor, key: Tensor):
    """True where query i may look at key j <= i (the lower triangle, L x S)."""
    xp = query.xp
    return xp.tril(xp.ones((query.shape[-2], key.shape[-2]), dtype=bool))


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """softmax(Q K^T / sqrt(d) + M) V:  (..., L, d), (..., S, d), (..., S, d_v) -> (..., L, d_v).

    ``attn_mask``: a bool mask (True: the key takes part) or a float mask added to the
    scores, broadcast against (..., L, S). ``is_causal``: query i sees keys 0..i only (no
    attn_mask then). ``dropout_p``: dropout on the weights (always applied when > 0, as
    in PyTorch). ``scale`` replaces 1/sqrt(d).
    """
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"scaled_dot_product_attention: query {tuple(query.shape)}, key {tuple(key.shape)} "
            f"and value {tuple(value.shape)} do not fit (..., L, d), (..., S, d), (..., S, d_v)"
        )
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
        attn_mask = _causal_mask(query, key)
    weights = attention_weights(query, key, additive_mask(attn_mask, True, query), scale)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p)
    return weights @ value
