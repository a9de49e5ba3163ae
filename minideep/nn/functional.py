"""``minideep.nn.functional`` (imported as ``F``): the stateless form of every layer."""

from __future__ import annotations

from ..ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh

__all__ = ["leaky_relu", "log_softmax", "relu", "sigmoid", "softmax", "tanh"]
