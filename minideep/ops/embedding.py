"""Embeddings: rows of a table picked by integer indices, and one-hot encodings."""

from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .index import IntoZeros


class Embedding(Function):
    """out[...] = weight[index[...]]:  index (*) int64, weight (num_embeddings, D) -> (*, D).

    dweight[i] = the sum of the rows of dout whose index is i (a scatter-add, IntoZeros),
    except the row ``padding_idx``, which gets no gradient.
    """

    @staticmethod
    def forward(ctx, weight, index, padding_idx):
        ctx.save_for_backward(index)
        ctx.shape, ctx.padding_idx = weight.shape, padding_idx
        return weight[index]

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        xp = get_array_module(grad)
        if ctx.padding_idx is not None:
            grad = xp.where((index == ctx.padding_idx)[..., None], 0.0, grad)
        rows = grad.reshape(-1, ctx.shape[1])
        return IntoZeros.run(rows, ctx.shape, (index.reshape(-1),)), None, None


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Look up the rows of ``weight``: (num_embeddings, D) at the int64 indices ``input``:
    (*) -> (*, D). The row ``padding_idx`` (if given) receives no gradient."""
    if input.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must hold int64 indices, got dtype {input.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-d, got shape {tuple(weight.shape)}")
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx {padding_idx} out of range for {num} rows")
        padding_idx %= num
    index = input.data
    if index.size and (int(index.min()) < 0 or int(index.max()) >= num):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexError(f"embedding: index {bad} is out of range for {num} embeddings")
    return Embedding.apply(weight, index, padding_idx)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 class indices (*) -> int64 (*, num_classes) with a 1 at each index.

    ``num_classes=-1`` takes one more than the largest index. No gradient.
    """
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected int64 class indices, got dtype {tensor.dtype}")
    index = tensor.data
    xp = get_array_module(index)
    if num_classes == -1:
        num_classes = int(index.max()) + 1 if index.size else 0
    if index.size and (int(index.min()) < 0 or int(index.max()) >= num_classes):
        raise ValueError(
            f"one_hot: class values must lie in [0, {num_classes}), got values from "
            f"{int(index.min())} to {int(index.max())}"
        )
    return Tensor((index[..., None] == xp.arange(num_classes)).astype(xp.int64))
