"""NumPy / CuPy dispatch, devices, dtype rules and seeding.

Every array operation in minideep goes through the module returned by
:func:`get_array_module` (``numpy`` on the CPU, ``cupy`` on the GPU), so the same
code runs on both. Differences between the two libraries are resolved here, once.
CuPy is imported only when a GPU is actually asked for.
"""

from __future__ import annotations

import numpy as np

float32 = np.float32
float64 = np.float64
int64 = np.int64

_cupy = None  # the cupy module once imported, False if it is unavailable


def _import_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()
            _cupy = cupy
        except Exception:
            _cupy = False
    return _cupy


def cuda_is_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device."""
    return bool(_import_cupy())


def get_array_module(array):
    """Return ``numpy`` or ``cupy``: whichever module owns ``array``.

    Given a Tensor (as a backward building the graph of a gradient is, see
    ``minideep/autograd``), the module of the same names on Tensors, ``minideep.ops.xp``.
    """
    if isinstance(array, np.ndarray):
        return np
    if hasattr(array, "requires_grad"):
        from .ops import xp

        return xp
    if _cupy is None or _cupy is False:
        return np
    return _cupy.get_array_module(array)


def is_cupy_array(array) -> bool:
    return type(array).__module__.startswith("cupy")


def device_of(array) -> str:
    """``"cuda"`` for a cupy array, ``"cpu"`` for anything else."""
    return "cuda" if is_cupy_array(array) else "cpu"


def check_device(device) -> str:
    """Normalise a device name (``"cpu"``, ``"cuda"``, ``"cuda:0"``) and check it exists."""
    name = str(device)
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not cuda_is_available():
            raise RuntimeError(
                f"device {name!r} was asked for, but CUDA is not available "
                "(install the gpu extra, pip install 'minideep[gpu]', on a machine with an "
                "NVIDIA GPU)"
            )
        return "cuda"
    raise ValueError(f"unknown device {name!r}: expected 'cpu' or 'cuda'")


def xp_for(device: str):
    """The array module of a device name."""
    return np if check_device(device) == "cpu" else _cupy


def to_device(array, device: str):
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    device = check_device(device)
    if device == device_of(array):
        return array
    if device == "cpu":
        return array.get()
    return _cupy.asarray(array)


def as_numpy(array) -> np.ndarray:
    """A host numpy array, copying from the GPU when needed."""
    if isinstance(array, np.ndarray):
        return array
    if is_cupy_array(array):
        return array.get()
    return np.asarray(array)


def as_strided(array, shape, strides):
    """A read-only strided view (numpy and cupy keep ``as_strided`` in different places)."""
    if isinstance(array, np.ndarray):
        return np.lib.stride_tricks.as_strided(array, shape, strides, writeable=False)
    return _cupy.lib.stride_tricks.as_strided(array, shape, strides)


def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` with repeated indices summed (unbuffered)."""
    if isinstance(target, np.ndarray):
        np.add.at(target, indices, values)
    elif hasattr(_cupy.add, "at"):  # CuPy 13 and later
        _cupy.add.at(target, indices, values)
    else:
        import cupyx

        cupyx.scatter_add(target, indices, values)


# ---------------------------------------------------------------------------
# Seeding: one generator per device, reset together by manual_seed.

_seed = None
_generators: dict = {}


def manual_seed(seed: int) -> None:
    """Make every random draw of minideep (init, dropout, shuffles) reproducible."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def default_rng(device: str = "cpu"):
    """The library's random generator for ``device`` (seeded by :func:`manual_seed`)."""
    gen = _generators.get(device)
    if gen is None:
        if device == "cpu":
            gen = np.random.default_rng(_seed)
        else:
            gen = _cupy.random.default_rng(_seed)
        _generators[device] = gen
    return gen


def numpy_rng() -> np.random.Generator:
    """The CPU generator; used for host-side randomness such as shuffles and init."""
    return default_rng("cpu")
