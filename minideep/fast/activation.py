"""Fast path of ReLU on the CPU (reference: ``ops/activation.py``, ``ReLU``).

NumPy's SIMD loop for ``maximum`` runs only when both operands are arrays, so the
forward compares against a shared read-only block of zeros instead of the scalar 0,
one cache-sized chunk of the batch at a time, into pooled memory. The backward is the
reference's ``grad * (out > 0)``, chunked into pooled memory. Same values to the bit.
Measured in ``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import numpy as np

from .memory import chunk_rows, empty_like, for_each_chunk, zeros_to_read
from .switch import enabled


def relu_applies(a) -> bool:
    """A CPU float array of at least one dimension, fast paths on."""
    return enabled() and isinstance(a, np.ndarray) and a.ndim > 0 and a.dtype.kind == "f"


def relu_forward(a):
    """``maximum(a, 0)``."""
    out = empty_like(a)
    zero = zeros_to_read((chunk_rows(a),) + a.shape[1:], a.dtype)
    for_each_chunk(lambda i: np.maximum(a[i], zero[: len(a[i])], out=out[i]), a)
    return out


def relu_backward(grad, out):
    """``grad * (out > 0)``."""
    dx = empty_like(grad)
    for_each_chunk(lambda i: np.multiply(grad[i], out[i] > 0, out=dx[i]), grad)
    return dx
