"""CuPy kernels: the GPU's fast paths, used only for arrays on a CUDA device.

The reference code in ``minideep/ops`` already runs on CuPy unchanged; these kernels
replace the parts where it launches many small kernels:

* ``conv``      - im2col and col2im for 2-d convolution: one thread per output element,
  col2im gathering (not scattering) so no atomics are needed, as Chainer did;
* ``pool``      - 2-d max pooling forward (value and argmax) and backward, likewise
  one thread per element with no atomics;
* ``recurrent`` - the whole LSTM recurrence in one launch forward and one backward:
  one thread block per batch row walks all time steps (the reference needs about a
  dozen launches per step).

Each kernel is compiled on first use and cached. ``md.fast_paths(False)`` turns them
off with the CPU's fast paths; ``fast/conv.py``, ``fast/pool.py`` and
``fast/recurrent.py`` decide when they apply.
"""

from __future__ import annotations

from ..fast.switch import enabled

# The 2-d conv and pool kernels index with 32-bit ints (64-bit division is several times
# slower on a GPU), so they take arrays of fewer elements than this.
MAX_ELEMENTS = 2**31


def active(array, elements: int | None = None) -> bool:
    """Whether to use a custom kernel for ``array``: a CuPy array, fast paths on, and
    ``elements`` (default ``array.size``; give the largest array the kernel touches)
    within 32-bit indexing."""
    if not (enabled() and type(array).__module__.startswith("cupy")):
        return False
    return (array.size if elements is None else elements) < MAX_ELEMENTS
