"""The differentiable operations, one file per family.

Each file defines its ops as :class:`~minideep.autograd.Function` subclasses (forward
and backward side by side) followed by the plain functions that call them. This
package re-exports the plain functions; ``Tensor``'s methods and operators use them.
"""

from .activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .index import getitem
from .math import (
    abs,
    add,
    cast,
    clamp,
    div,
    exp,
    log,
    log1p,
    matmul,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    to_device,
    where,
)
from .reduce import argmax, argmin, max, mean, min, sum, var
from .shape import cat, expand, flatten, permute, reshape, squeeze, stack, transpose, unsqueeze

__all__ = [
    "abs",
    "add",
    "argmax",
    "argmin",
    "cast",
    "cat",
    "clamp",
    "div",
    "exp",
    "expand",
    "flatten",
    "getitem",
    "leaky_relu",
    "log",
    "log1p",
    "log_softmax",
    "matmul",
    "max",
    "mean",
    "min",
    "mul",
    "neg",
    "permute",
    "pow",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sqrt",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "tanh",
    "to_device",
    "transpose",
    "unsqueeze",
    "var",
    "where",
]
