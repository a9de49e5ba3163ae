"""Transformers: multi-head attention and the encoder layer, with PyTorch's names.

``MultiheadAttention`` projects queries, keys and values with one packed weight
``in_proj_weight`` (3E, E), splits the E features into ``num_heads`` heads of
E / num_heads, lets every head attend, softmax(Q K^T / sqrt(d) + M) V, and mixes the
heads back with ``out_proj``. ``TransformerEncoderLayer`` is self-attention followed by a
two-layer feed-forward network, each wrapped in a residual connection and a layer norm
(after it by default, before it with ``norm_first=True``). The tensors are
(L, N, E) (sequence first) unless ``batch_first=True``, as in PyTorch.
"""

from __future__ import annotations

import copy

from ..ops.attention import additive_mask, attention_weights
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Dropout, LayerNorm, Linear, _empty
from .module import Module, ModuleList

__all__ = ["MultiheadAttention", "TransformerEncoder", "TransformerEncoderLayer"]


class MultiheadAttention(Module):
    """Multi-head attention: (L, N, E) queries, (S, N, E) keys and values -> (L, N, E)
    outputs and (N, L, S) weights (averaged over the heads), or with ``batch_first``
    (N, L, E) and (N, S, E); unbatched (L, E) and (S, E) work too.

    Parameters: ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,), the query, key and
    value projections stacked in that order; ``out_proj`` a Linear(E, E).
    Masks follow PyTorch's convention for this module: in a bool ``attn_mask`` (L, S) or
    (N * num_heads, L, S) and a bool ``key_padding_mask`` (N, S), True means "may NOT
    attend" (the opposite of scaled_dot_product_attention's); a float mask is added to the
    scores. Dropout (probability ``dropout``) acts on the weights in training.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if add_bias_kv or add_zero_attn or {kdim, vdim} - {None, embed_dim}:
            raise NotImplementedError(
                "MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim different from "
                "embed_dim are not supported"
            )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.batch_first = batch_first
        self.in_proj_weight = _empty((3 * embed_dim, embed_dim), device, dtype)
        if bias:
            self.in_proj_bias = _empty((3 * embed_dim,), device, dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's: xavier_uniform_ for in_proj_weight, zero biases (out_proj.weight keeps
        Linear's default initialisation)."""
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(self, x: Tensor, which: int) -> Tensor:
        """x @ W_which^T + b_which: the query (0), key (1) or value (2) projection."""
        e = self.embed_dim
        rows = slice(which * e, (which + 1) * e)
        bias = self.in_proj_bias[rows] if self.in_proj_bias is not None else None
        a, b, _ = x.shape  # one 2-d product over all (T * N) rows
        return F.linear(x.reshape(a * b, e), self.in_proj_weight[rows], bias).reshape(a, b, e)

    def _split_heads(self, x: Tensor, batch_first: bool) -> Tensor:
        """(T, N, E), or (N, T, E) when ``batch_first`` -> (N, heads, T, head_dim)."""
        a, b, _ = x.shape
        order = (0, 2, 1, 3) if batch_first else (1, 2, 0, 3)
        return x.reshape(a, b, self.num_heads, self.head_dim).permute(*order)

    def _mask(self, attn_mask, key_padding_mask, like: Tensor, n: int, length: int, source: int):
        """The additive float mask (N, heads, L, S) (or broadcastable) from both masks."""
        mask = additive_mask(attn_mask, False, like)
        if mask is not None:
            if mask.ndim == 2 and tuple(mask.shape) == (length, source):
                pass
            elif mask.ndim == 3 and tuple(mask.shape) == (n * self.num_heads, length, source):
                mask = mask.reshape(n, self.num_heads, length, source)
            else:
                raise ValueError(
                    f"MultiheadAttention: attn_mask of shape {tuple(mask.shape)}, expected "
                    f"({length}, {source}) or ({n * self.num_heads}, {length}, {source})"
                )
        padding = additive_mask(key_padding_mask, False, like)
        if padding is not None:
            if tuple(padding.shape) != (n, source):
                raise ValueError(
                    f"MultiheadAttention: key_padding_mask of shape {tuple(padding.shape)}, "
                    f"expected ({n}, {source})"
                )
            padding = padding.reshape(n, 1, 1, source)
            mask = padding if mask is None else mask + padding
        return mask

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        """Returns ``(output, weights)``; weights is None unless ``need_weights``, else
        (N, L, S) averaged over the heads, or (N, heads, L, S) with
        ``average_attn_weights=False``. ``is_causal`` is only a hint that ``attn_mask`` is
        the causal mask (PyTorch's meaning): the mask itself must be given."""
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal is a hint and needs attn_mask")
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(
                f"MultiheadAttention: expected 3-d (batched) or 2-d (unbatched) query, key "
                f"and value, got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        batched = query.ndim == 3
        if not batched:  # one sequence: a batch of 1 in the middle (L, 1, E)
            query, key, value = (x.unsqueeze(1) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.reshape(1, -1)
        # the projections run on the layout given (contiguous); the heads are then
        # arranged (N, heads, T, head_dim) from (T, N, E) or, batch first, (N, T, E)
        batch_first = batched and self.batch_first
        if batch_first:
            (n, length, e), source = query.shape, key.shape[1]
        else:
            (length, n, e), source = query.shape, key.shape[0]
        if e != self.embed_dim:
            raise ValueError(
                f"MultiheadAttention: query has {e} features, expected embed_dim = {self.embed_dim}"
            )
        q, k, v = (
            self._split_heads(self._project(x, i), batch_first)
            for i, x in enumerate([query, key, value])
        )

        mask = self._mask(attn_mask, key_padding_mask, q, n, length, source)
        weights = attention_weights(q, k, mask)  # (N, heads, L, S)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, self.dropout)
        heads = weights @ v  # (N, heads, L, head_dim): back to (N, L, E) or (L, N, E)
        if batch_first:
            out = self.out_proj(heads.permute(0, 2, 1, 3).reshape(n * length, e))
            out = out.reshape(n, length, e)
        else:
            out = self.out_proj(heads.permute(2, 0, 1, 3).reshape(length * n, e))
            out = out.reshape(length, n, e)
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights if batched else weights.squeeze(0))

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward network, each with a residual connection:

        post-norm (default):  x = norm1(x + sa(x));  x = norm2(x + ff(x))
        norm_first=True:      x = x + sa(norm1(x));  x = x + ff(norm2(x))

    sa(x) = dropout1(self_attn(x, x, x)), ff(x) = dropout2(linear2(dropout(act(linear1(x))))).
    src: (S, N, E), or (N, S, E) with ``batch_first``, or (S, E).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"activation should be relu/gelu, not {activation!r}")
            activation = _ACTIVATIONS[activation]
        self.activation = activation

    def _sa_block(self, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` applied in turn (``layers.0``, ...), then
    ``norm`` if given. Each copy starts with the layer's weights and is trained apart.
    (``enable_nested_tensor`` and ``mask_check`` are accepted for PyTorch's signature;
    there is no nested-tensor fast path here.)"""

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(
                x,
                src_mask=mask,
                src_key_padding_mask=src_key_padding_mask,
                is_causal=bool(is_causal),
            )
        return self.norm(x) if self.norm is not None else x
