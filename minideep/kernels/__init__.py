"""CuPy kernels for the GPU path, used only when the arrays are on a CUDA device.

The generic code in ``minideep/ops`` already runs on CuPy unchanged; these kernels
replace the parts where that generic path launches many small kernels:

* ``conv``      - im2col and col2im for 2-d convolution: one thread per output element,
  col2im gathering (not scattering) so no atomics are needed, as Chainer did;
* ``pool``      - 2-d max pooling forward (value and argmax) and backward, likewise
  one thread per element with no atomics;
* ``recurrent`` - one fused elementwise kernel per LSTM step for the gate
  nonlinearities and the cell update, forward and backward (the generic path needs
  about a dozen launches per step).

Each kernel is compiled on first use (``cupy.ElementwiseKernel`` caches it).
"""

# The ops use these kernels for CuPy arrays while this is True; the tests switch it off
# to compare against the generic path.
ENABLED = True


def active(array) -> bool:
    """Whether to use a custom kernel for ``array``: a CuPy array, kernels enabled."""
    return ENABLED and type(array).__module__.startswith("cupy")
