"""NumPy's names on Tensors: the ``xp`` of a backward that builds a graph.

A built-in backward is written once, with operators and ``xp = get_array_module(grad)``.
On arrays ``xp`` is numpy (or cupy). With ``create_graph=True`` the gradients are
Tensors and ``get_array_module`` returns this module instead, so every ``xp.exp``,
``xp.where``, ``xp.sum`` in the formula becomes a differentiable op, and the backward
records the graph of the gradient. Only the names the backward formulas use are here.
Functions of indices and masks (``sign``, comparisons) give constant Tensors: they have
no gradient.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from . import activation as _act
from . import math as _math
from . import reduce as _reduce
from . import shape as _shape

float32, float64, int64 = np.float32, np.float64, np.int64

exp = _math.exp
log = _math.log
log1p = _math.log1p
sqrt = _math.sqrt
abs = _math.abs
tanh = _act.tanh
matmul = _math.matmul
multiply = _math.mul
sin = _math.sin
cos = _math.cos


def sign(a):
    return Tensor(a.xp.sign(a.data))


def where(condition, a, b):
    return _math.where(condition, a, b)


def maximum(a, b):
    """max(a, b) with one side a number (all the backward formulas need): a clamp."""
    if isinstance(b, Tensor):
        a, b = b, a
    return _math.clamp(a, min=b)


def sum(a, axis=None, keepdims=False):
    return _reduce.sum(a, axis, keepdims)


def transpose(a, axes):
    return _shape.permute(a, *axes)


def swapaxes(a, axis0, axis1):
    return _shape.transpose(a, axis0, axis1)


def moveaxis(a, source: int, destination: int):
    order = [d for d in range(a.ndim) if d != source % a.ndim]
    order.insert(destination % a.ndim, source % a.ndim)
    return _shape.permute(a, *order)


def expand_dims(a, axis: int):
    return _shape.unsqueeze(a, axis)


def broadcast_to(a, shape):
    return _shape.expand(a, *shape)


def concatenate(tensors, axis=0):
    return _shape.cat(tensors, axis)


def stack(tensors, axis=0):
    return _shape.stack(tensors, axis)


def split(a, bounds, axis=0):
    edges = [0, *bounds, a.shape[axis]]
    lead = (slice(None),) * (axis % a.ndim)
    return [a[lead + (slice(lo, hi),)] for lo, hi in zip(edges[:-1], edges[1:])]


def flip(a, axis):
    return _shape.flip(a, axis)


def cumsum(a, axis):
    return _reduce.cumsum(a, axis)


def take(a, i: int, axis=0):
    return a[(slice(None),) * (axis % a.ndim) + (i,)]
