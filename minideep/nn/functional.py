"""``minideep.nn.functional`` (imported as ``F``): the stateless form of every layer."""

from __future__ import annotations

from ..ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from ..ops.conv import conv2d, conv3d, conv_transpose2d
from ..ops.dropout import dropout
from ..ops.linear import linear
from ..ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from ..ops.norm import batch_norm
from ..ops.pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    avg_pool2d,
    avg_pool3d,
    max_pool2d,
    max_pool3d,
)

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "avg_pool2d",
    "avg_pool3d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "conv3d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "max_pool3d",
    "mse_loss",
    "nll_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
