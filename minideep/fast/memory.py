"""CPU memory for the fast paths: a caching allocator and cache-sized chunks.

Only code in ``minideep/fast`` uses this; the reference ops in ``minideep/ops`` allocate
with plain ``xp.empty``/``xp.zeros``. Results never depend on it: an array from the pool
is an ordinary NumPy array, and a chunked loop computes every element as the whole-array
operation would. What it saves is measured in ``benchmarks/results/fast_paths.md``.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import sys
import weakref

import numpy as np

from .switch import env_flag

# ---------------------------------------------------------------------------
# Keeping freed memory in the process (glibc).
#
# glibc's malloc serves an array above its mmap threshold (128 KB at first, rising on its
# own up to 32 MB as such arrays are freed) from memory it maps for that array alone, and
# the others from its heap; and when a free leaves more than about twice the threshold
# free at the top of the heap, it hands that back to the operating system. The next step
# allocates the same arrays again, and every 4 KB page of them costs a page fault the
# first time it is written (whether a loop is hit depends on where its arrays land): a
# loop of LayerNorm(128) forward+backward on 16x64 tokens made 480 faults per call and
# ran 1.8-1.9x slower than without them (benchmarks/results/fast_paths.md). So at import,
# minideep asks glibc to keep what is freed: arrays up to 32 MB come from the heap, and
# the heap is trimmed only beyond 256 MB free. The price: the process keeps up to that
# much freed memory (and so does each worker or MPI process), and the resident size seen
# from outside stays near its peak. The pool below does the same for the fast paths' big
# arrays; this covers every array NumPy allocates (the reference ops' outputs too), and
# PyTorch's in the same process. It changes no result. ``MINIDEEP_KEEP_FREED_MEMORY=0``
# leaves malloc as it is.

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_KEEP_MMAP_BELOW = 32 << 20  # glibc's own ceiling for the threshold (DEFAULT_MMAP_THRESHOLD_MAX)
_KEEP_TRIM_ABOVE = 256 << 20


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for the next allocations (see above).
    True if it did; False where the C library is not glibc (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_MMAP_BELOW)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM_ABOVE)
    )


if env_flag("MINIDEEP_KEEP_FREED_MEMORY"):
    keep_freed_memory()

# ---------------------------------------------------------------------------
# A caching allocator for big CPU arrays.
#
# The C allocator hands blocks of more than a few MB back to the operating system when
# they are freed, so a fresh one costs a page fault per 4 KB page the first time it is
# written. A training step allocates the same big arrays (activations, their gradients,
# im2col matrices) every time. So, like PyTorch's CUDA caching allocator (and CuPy's
# memory pool on the GPU), we keep the memory of a big array once the array is garbage
# and hand it out again for the next array of the same size.
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


def empty(shape, dtype=np.float32):
    """``np.empty(shape, dtype)``; a big array reuses the memory of an array that has been
    garbage-collected (see above)."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes < _POOL_MIN_BYTES:
        return np.empty(shape, dtype)
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
    """:func:`empty` with the shape and dtype of ``a``."""
    return empty(a.shape, a.dtype)


def zeros(shape, dtype=np.float32):
    """:func:`empty`, filled with zeros."""
    out = empty(shape, dtype)
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
# Every element is computed as before, so results do not depend on the chunks.
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


_constant_blocks: dict = {}  # (value, dtype) -> a read-only flat array of it, grown on demand


def constant_to_read(value, shape, dtype):
    """A read-only array filled with ``value`` (CPU), shared by every caller: an operand
    for NumPy loops that are fast only between two arrays (``maximum``/``minimum`` against
    an array run NumPy's SIMD loop, against a scalar a slower one; see
    ``fast/activation.py``)."""
    dtype, size = np.dtype(dtype), math.prod(shape)
    key = (float(value), dtype)
    block = _constant_blocks.get(key)
    if block is None or block.size < size:
        if block is None and len(_constant_blocks) >= 16:  # a few values are ever used
            _constant_blocks.clear()
        block = np.full(size, value, dtype)
        block.flags.writeable = False
        _constant_blocks[key] = block
    return block[:size].reshape(shape)


def zeros_to_read(shape, dtype):
    """:func:`constant_to_read` of zeros."""
    return constant_to_read(0, shape, dtype)


def rows_unbuffered(length: int):
    """A context in which NumPy's ufuncs between a C-contiguous (rows, length) block and
    one value per row (a (rows, 1) operand) run row by row, each row against a scalar.

    Outside it, where ``length`` is under NumPy's buffer size (8192 elements), the
    iterator joins the rows into one buffered loop and copies the repeated values into
    its buffers: such a step takes 1.7-2.4x as long as one against a scalar. With
    the buffer size at most ``length`` it does not (``benchmarks/results/fast_paths.md``);
    the size is put back on leaving, even through an error.
    Rows under 512 values gain little, and then this context changes nothing."""
    if length < 512 or length >= np.getbufsize():
        return contextlib.nullcontext()
    return _buffer_size(length // 16 * 16)  # NumPy wants a multiple of 16


@contextlib.contextmanager
def _buffer_size(size: int):
    old = np.setbufsize(size)
    try:
        yield
    finally:
        np.setbufsize(old)
