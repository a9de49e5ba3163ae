"""NumPy / CuPy dispatch, devices, dtype rules and seeding.

Every array operation in minideep goes through the module returned by
:func:`get_array_module` (``numpy`` on the CPU, ``cupy`` on the GPU), so the same
code runs on both. Differences between the two libraries are resolved here, once.
CuPy is imported only when a GPU is actually asked for.
"""

from __future__ import annotations

import ctypes
import math
import weakref

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
    """Return ``numpy`` or ``cupy``: whichever module owns ``array``."""
    if isinstance(array, np.ndarray) or _cupy is None or _cupy is False:
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
# A caching allocator for big CPU arrays.
#
# The C allocator hands blocks of more than a few MB back to the operating system when
# they are freed, so a fresh one costs a page fault per 4 KB page the first time it is
# written: about 2.3 us a page here, 4.8 ms to fill a fresh 8 MB activation against 1.2
# ms for one written before (2-core CPU). A training step allocates the same big arrays
# (activations, their gradients, im2col matrices) every time: the cnn benchmark step
# took 4,700 page faults, about 11 ms of its 85. So, like PyTorch's CUDA caching
# allocator (and CuPy's memory pool on the GPU), we keep the memory of a big array once
# the array is garbage and hand it out again for the next array of the same size.
#
# How we know the memory is free: it is a block owned by the pool, and the array is made
# over a small ctypes *handle* on that block. Every view of the array keeps the handle
# alive, so the handle dies exactly when the last array using the memory does, and a
# weak reference to it then puts the block back on the free list. Nothing is given back
# by hand, and no array can lose its memory while anything still uses it.

_POOL_MIN_BYTES = 1 << 20  # smaller arrays come from the C allocator's own free lists
_POOL_PER_SIZE = 8  # idle blocks kept per size in bytes
_POOL_MAX_IDLE_BYTES = 1 << 30  # beyond this, blocks that come back are freed
_pool_free: dict[int, list] = {}  # nbytes -> idle blocks
_pool_in_use: dict[int, tuple] = {}  # id(weak reference) -> (weak reference, block)
_pool_idle_bytes = 0


def empty(shape, dtype=float32, xp=np):
    """``xp.empty(shape, dtype)``; on the CPU a big array reuses the memory of an array
    that has been garbage-collected (see above)."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize * math.prod(shape)
    if xp is not np or nbytes < _POOL_MIN_BYTES:
        return xp.empty(shape, dtype)
    global _pool_idle_bytes
    idle = _pool_free.get(nbytes)
    if idle:
        block = idle.pop()
        _pool_idle_bytes -= nbytes
    else:
        block = np.empty(nbytes, np.uint8)
    handle = (ctypes.c_char * nbytes).from_buffer(block)
    ref = weakref.ref(handle, _give_back)
    _pool_in_use[id(ref)] = (ref, block)
    return np.frombuffer(handle, dtype).reshape(shape)


def empty_like(a):
    """:func:`empty` with the shape, dtype and array module of ``a``."""
    return empty(a.shape, a.dtype, get_array_module(a))


def zeros(shape, dtype=float32, xp=np):
    """:func:`empty`, filled with zeros."""
    out = empty(shape, dtype, xp)
    out.fill(0)
    return out


def empty_cache() -> None:
    """Free the idle blocks of the CPU pool (arrays in use keep theirs)."""
    global _pool_idle_bytes
    _pool_free.clear()
    _pool_idle_bytes = 0


def pool_idle_bytes() -> int:
    """Bytes the CPU pool holds for arrays that are gone."""
    return _pool_idle_bytes


def _give_back(ref) -> None:
    global _pool_idle_bytes
    _, block = _pool_in_use.pop(id(ref))
    idle = _pool_free.setdefault(block.nbytes, [])
    if len(idle) < _POOL_PER_SIZE and _pool_idle_bytes + block.nbytes <= _POOL_MAX_IDLE_BYTES:
        idle.append(block)
        _pool_idle_bytes += block.nbytes


# ---------------------------------------------------------------------------
# Cache blocking, for the elementwise work on big CPU arrays.
#
# An op that makes several passes over the same data (a 2x2 max pool reads x four times,
# col2im adds nine runs into one array) is faster one cache-sized chunk of the batch at
# a time than one whole array at a time: the second pass finds the chunk still in cache.
# On a (32, 16, 64, 64) 2x2 max pool, backward takes 10.6 -> 6.4 ms in 512 KB chunks
# and the cnn benchmark step 78 -> 72 ms (2-core CPU). Every element is computed as
# before, so results do not depend on the chunks.
#
# (Running the chunks on two threads, as PyTorch splits its elementwise ops, halved a
# pool on its own but made the cnn step no faster: after each matrix product OpenBLAS's
# worker threads keep spinning for a while, on the very cores the chunks would use.)

_CHUNK_BYTES = 1 << 19  # about a core's L2 cache


def _one_piece(a) -> bool:
    """A small array, a 0-d one, or one on the GPU: not split into chunks."""
    return not isinstance(a, np.ndarray) or a.ndim == 0 or a.nbytes <= _CHUNK_BYTES


def chunk_rows(a) -> int:
    """How many entries of ``a``'s first axis one chunk of :func:`for_each_chunk` holds."""
    if _one_piece(a):
        return a.shape[0] if a.ndim else 1
    return max(1, _CHUNK_BYTES * a.shape[0] // a.nbytes)


def for_each_chunk(fn, a) -> None:
    """Call ``fn(index)`` for indices that split the first axis of ``a`` into chunks of
    about 512 KB (:func:`chunk_rows` entries), in order.

    ``fn`` works on ``array[index]`` of each array it touches. For a small array, a 0-d
    one, or one on the GPU, it is one call with ``index = ...`` (all of it).
    """
    if _one_piece(a):
        fn(...)
        return
    rows = chunk_rows(a)
    for start in range(0, a.shape[0], rows):
        fn(slice(start, start + rows))


_zero_blocks: dict = {}  # dtype -> a read-only flat array of zeros, grown on demand


def zeros_to_read(shape, dtype):
    """A read-only array of zeros (CPU), shared by every caller: an operand for NumPy
    loops that are fast only between two arrays (see ``ops/activation.py``, ReLU)."""
    dtype, size = np.dtype(dtype), math.prod(shape)
    block = _zero_blocks.get(dtype)
    if block is None or block.size < size:
        block = np.zeros(size, dtype)
        block.flags.writeable = False
        _zero_blocks[dtype] = block
    return block[:size].reshape(shape)


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
