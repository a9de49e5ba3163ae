"""Fast paths: faster ways to compute what the ops in ``minideep/ops`` compute.

Every op in ``ops/`` is written as a textbook writes it: that is the *reference*. Where
a benchmark showed that another way pays, the other way lives here (CPU) or in
``minideep/kernels`` (CUDA), and the op delegates to it in one line when it applies.
Which path runs depends on shapes, dtype and device only, never on whether gradients
are being recorded, and every fast path is tested equal to its reference (to the bit
where the arithmetic is the same, to rounding where the order of a sum changes).

* ``conv``       - convolutions: im2col in chunks into pooled memory, the bias folded
  into the product, col2im on the padded grid for stride 1; without im2col, one
  product per kernel offset on the stride phases of the input (``PhaseGrid``: plain and
  transposed convolutions) and one scaled slab per offset (depthwise); CUDA
  im2col/col2im;
* ``pool``       - max pooling on contiguous copies of each slab; global average
  pooling as a mean over each plane; the CUDA max pool;
* ``activation`` - ReLU against a block of zeros, in chunks; the other activations in
  place in cache-sized pieces; float32 GELU with Phi as one rational function;
* ``recurrent``  - the LSTM's gates through one sigmoid; the CUDA LSTM recurrence;
* ``norm``       - LayerNorm (sums as matrix-vector products), BatchNorm and GroupNorm
  (sums by einsum), elementwise steps in place;
* ``sampling``, ``attention`` - bilinear grid_sample and the attention weights as one Function;
* ``memory``     - what the CPU paths share: a caching allocator and cache-sized chunks;
  and, for all of minideep, freed memory kept by glibc's malloc (set at import).

``with md.fast_paths(False):`` (or ``MINIDEEP_FAST_PATHS=0``) runs the reference
everywhere. What each path saves: ``benchmarks/results/fast_paths.md``.
"""

from . import activation, attention, conv, norm, pool, recurrent, sampling
from .switch import enabled, fast_paths

__all__ = [
    "activation",
    "attention",
    "conv",
    "enabled",
    "fast_paths",
    "norm",
    "pool",
    "recurrent",
    "sampling",
]
