"""Weight initialisation, with PyTorch's formulas and minideep's seeded generator.

PyTorch initialises ``Linear`` and ``Conv`` weights with
``kaiming_uniform_(w, a=sqrt(5))``, which is U(-b, b) with b = 1 / sqrt(fan_in), and
their biases with U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.data = backend.to_device(values.astype(t.dtype), t.device)
    return t


def fan_in_and_fan_out(shape: tuple) -> tuple[int, int]:
    """For a weight ``(out, in, *kernel)``: fan_in = in * k, fan_out = out * k, k = prod(kernel)."""
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a weight with at least 2 dims, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    return _fill(t, backend.numpy_rng().uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(t, backend.numpy_rng().normal(mean, std, t.shape))


def zeros_(t: Tensor) -> Tensor:
    return _fill(t, np.zeros(t.shape))


def ones_(t: Tensor) -> Tensor:
    return _fill(t, np.ones(t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    return _fill(t, np.full(t.shape, value))


def kaiming_uniform_(t: Tensor, a: float = 0.0, nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-bound, bound), bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2))."""
    fan_in, _ = fan_in_and_fan_out(t.shape)
    gain = math.sqrt(2.0 / (1 + a * a)) if nonlinearity == "leaky_relu" else math.sqrt(2.0)
    bound = gain * math.sqrt(3.0 / fan_in)
    return uniform_(t, -bound, bound)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(t.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)
