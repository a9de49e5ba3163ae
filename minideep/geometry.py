"""Patch geometry: where the windows of a convolution or a pool fall.

Shared by the reference ops (``ops/conv.py``, ``ops/pool.py``) and their fast paths
(``fast/``, ``kernels/``), so that neither imports the other. Everything is written for
any number of spatial dimensions: ``x`` is ``(N, C, *S)``, ``kernel``, ``stride``,
``padding`` and ``dilation`` are tuples with one entry per spatial axis.

* :func:`output_size` - how many window positions fit along one axis (and
  :func:`transposed_output_shape`, the size a transposed convolution gives);
* :func:`pad_spatial` / :func:`crop_index` - zero padding and the index that undoes it;
* :func:`bias_grad` - a convolution's bias gradient, dy summed per channel;
* :func:`windows_past_the_end`, :func:`pad_end`, :func:`crop_windows` - a transposed
  convolution whose output padding reaches past its stride;
* :func:`windows` - every window at once, as a strided *view* of the padded input;
* :func:`window_slices` - the same windows one kernel offset at a time;
* :func:`im2col` / :func:`col2im` - windows as the columns of a matrix, and back.
"""

from __future__ import annotations

import itertools
import math

from .backend import as_strided, get_array_module


def ntuple(value, n: int, name: str) -> tuple:
    """``3 -> (3, 3)``; a sequence must have ``n`` entries."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or {n} ints, got {value}")
    return value


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Number of window positions along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def output_shape(spatial: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """:func:`output_size` along every axis; a clear error when the kernel does not fit."""
    out = tuple(output_size(*a) for a in zip(spatial, kernel, stride, padding, dilation))
    if min(out) < 1:
        raise ValueError(
            f"kernel {kernel} (dilation {dilation}) does not fit in input of spatial size "
            f"{tuple(spatial)} padded by {padding}"
        )
    return out


def transposed_output_shape(
    spatial: tuple, kernel: tuple, stride: tuple, padding: tuple, output_padding, dilation
) -> tuple:
    """A transposed convolution's output size along every axis:
    (n - 1) s - 2p + d(k - 1) + output_padding + 1."""
    return tuple(
        (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        for n, k, s, p, op, d in zip(spatial, kernel, stride, padding, output_padding, dilation)
    )


def bias_grad(grad):
    """A convolution's bias gradient: ``dy (N, C, *out)`` summed over the samples and the
    positions, one value per channel."""
    return grad.reshape(grad.shape[0], grad.shape[1], -1).sum(axis=2).sum(axis=0)


def windows_past_the_end(stride: tuple, output_padding: tuple) -> tuple:
    """How many window positions past x's end a transposed convolution's output holds,
    per axis: ``output_padding // stride``.

    The transposed convolution adds each input position's window into y. Read the other
    way, y's windows (a convolution over y with the same geometry) number
    ``S + output_padding // stride`` along an axis: one per input position, and one more
    for every further ``stride`` positions of output padding. That happens when
    ``stride <= output_padding < dilation``, which PyTorch allows. Those windows belong to
    input positions that do not exist: :func:`pad_end` gives x zeros there (they add
    nothing), and :func:`crop_windows` drops their columns again."""
    return tuple(op // s for op, s in zip(output_padding, stride))


def pad_end(x, extra: tuple):
    """``x: (N, C, *S)`` with ``extra[i]`` zeros after the end of axis 2+i (an array)."""
    if not any(extra):
        return x
    xp = get_array_module(x)
    out = xp.zeros(x.shape[:2] + tuple(s + e for s, e in zip(x.shape[2:], extra)), x.dtype)
    out[(slice(None), slice(None)) + tuple(slice(0, s) for s in x.shape[2:])] = x
    return out


def crop_windows(cols, spatial: tuple, extra: tuple):
    """``cols: (N, CK, L')``, the windows of ``spatial + extra`` positions, without the
    windows past ``spatial``: ``(N, CK, prod(spatial))``. Arrays or Tensors (reshape and
    slicing are differentiable)."""
    if not any(extra):
        return cols
    n, ck = cols.shape[:2]
    grid = cols.reshape((n, ck) + tuple(s + e for s, e in zip(spatial, extra)))
    kept = grid[(slice(None), slice(None)) + tuple(slice(0, s) for s in spatial)]
    return kept.reshape(n, ck, math.prod(spatial))


def pad_spatial(x, padding: tuple, value: float = 0.0):
    """``x: (N, C, *S)`` with ``padding[i]`` entries of ``value`` on both sides of axis 2+i."""
    if not any(padding):
        return x
    xp = get_array_module(x)
    shape = x.shape[:2] + tuple(s + 2 * p for s, p in zip(x.shape[2:], padding))
    out = xp.full(shape, value, dtype=x.dtype)
    out[crop_index(x.shape[2:], padding)] = x
    return out


def crop_index(spatial: tuple, padding: tuple) -> tuple:
    """The index that takes the unpadded interior out of a padded array."""
    return (slice(None), slice(None)) + tuple(slice(p, p + s) for s, p in zip(spatial, padding))


def windows(x_pad, kernel: tuple, stride: tuple, dilation: tuple, out: tuple):
    """A read-only strided view ``(N, C, *kernel, *out)`` of every window (no copy).

    ``view[n, c, *kk, *p] = x_pad[n, c, *(p * stride + kk * dilation)]``: one step along
    a kernel axis moves ``dilation`` elements, one step along an output axis ``stride``.
    """
    axis_strides = x_pad.strides[2:]
    strides = (
        x_pad.strides[:2]
        + tuple(st * d for st, d in zip(axis_strides, dilation))
        + tuple(st * s for st, s in zip(axis_strides, stride))
    )
    return as_strided(x_pad, x_pad.shape[:2] + kernel + out, strides)


def window_slices(kernel: tuple, stride: tuple, dilation: tuple, out: tuple):
    """Yield ``(offset, index)`` for every kernel offset, in row-major order:
    ``x_pad[index]`` is the ``(N, C, *out)`` slab of the elements that offset sees in
    all windows at once."""
    for offset in itertools.product(*(range(k) for k in kernel)):
        index = (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s)
            for o, s, d, n in zip(offset, stride, dilation, out)
        )
        yield offset, index


def im2col(x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """``x: (N, C, *S) -> cols: (N, C*K, L)`` and the output spatial shape ``out``.

    ``K = prod(kernel)``, ``L = prod(out)``; column ``p`` of ``cols[n]`` is the window at
    output position ``p``, flattened in ``(c, *kernel)`` order like a weight's last dims.
    The reshape of the window view is the one copy.
    """
    out = output_shape(x.shape[2:], kernel, stride, padding, dilation)
    view = windows(pad_spatial(x, padding), kernel, stride, dilation, out)
    cols = view.reshape(x.shape[0], x.shape[1] * math.prod(kernel), math.prod(out))
    return cols, out


def col2im(cols, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple):
    """The adjoint of :func:`im2col`: ``cols: (N, C*K, L) -> (N, C, *S)``.

    Each column is added back onto the input positions of its window; positions shared
    by overlapping windows receive the sum. One strided add per kernel offset, so no
    ``np.add.at``.
    """
    xp = get_array_module(cols)
    n, c, *spatial = x_shape
    out = output_shape(tuple(spatial), kernel, stride, padding, dilation)
    cols = cols.reshape((n, c) + kernel + out)
    padded = (n, c) + tuple(s + 2 * p for s, p in zip(spatial, padding))
    dx = xp.zeros(padded, dtype=cols.dtype)
    for offset, index in window_slices(kernel, stride, dilation, out):
        dx[index] += cols[(slice(None), slice(None)) + offset]
    return dx[crop_index(tuple(spatial), padding)]
