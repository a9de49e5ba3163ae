"""Resampling: interpolation, sampling at arbitrary points, padding, pixel shuffles.

* :func:`interpolate` resizes by a product with one *interpolation matrix* per spatial
  axis (like adaptive average pooling's bin matrices, ``ops/pool.py``). Row ``i`` of the
  matrix of an axis holds the weights output position ``i`` gives the input positions:
  one 1 for ``nearest``, the two weights ``1 - lambda`` and ``lambda`` of the two nearest
  input positions for the linear modes. Bilinear and trilinear interpolation are these
  1-d interpolations along each axis in turn, so ``y = A_H x A_W^T`` in 2-d and
  ``dx = A_H^T dy A_W``: fast, and exactly differentiable.
* :func:`grid_sample` reads ``x`` at arbitrary (fractional) points: each output gathers
  the 4 (8 in 3-d) input pixels around its point and mixes them with bilinear weights
  that are differentiable functions of the point, so the gradient flows to ``x`` (through
  the scatter that is the gather's adjoint, :class:`PlaneScatter`) and to the grid
  (through the weights). :func:`affine_grid` makes the grid of an affine map.
* :func:`pad` (constant, reflect, replicate, circular) and :func:`pixel_shuffle` /
  :func:`pixel_unshuffle` (channels <-> space) are a copy into a bigger array and
  reshapes/permutes.

Coordinates follow PyTorch exactly (``aten/src/ATen/native/UpSample.h``,
``GridSampler.h``); each formula is written where it is used.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import fast
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from . import shape as _shape


class PlaneGather(Function):
    """y[n, c, l] = x[n, c, index[n, c, l]]: values read from each (flattened) plane.

    x: (N, C, P), index: (N, C, L) or (N, 1, L) (shared by the channels), int -> y: (N, C, L).
    Linear in x; the adjoint is :class:`PlaneScatter` (dx = the gradients added back at
    the positions they were read from).
    """

    @staticmethod
    def forward(ctx, x, index):
        xp = get_array_module(x)
        ctx.save_for_backward(index)
        ctx.size = x.shape[2]
        if index.shape[1] == 1:  # one take per sample: 3x faster than take_along_axis
            return xp.stack([x[n].take(index[n, 0], axis=1) for n in range(x.shape[0])])
        return xp.take_along_axis(x, index, axis=2)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return PlaneScatter.run(grad, index, ctx.size), None


class PlaneScatter(Function):
    """dx[n, c, p] = sum of g[n, c, l] over the l with index[n, c, l] = p.

    g: (N, C, L), index as in :class:`PlaneGather`, ``size`` = P -> (N, C, P). The
    adjoint of PlaneGather (so its own backward is a gather). Repeated positions sum:
    one ``bincount`` per sample, over the flat positions ``c * P + index``.
    """

    @staticmethod
    def forward(ctx, g, index, size):
        xp = get_array_module(g)
        ctx.save_for_backward(index)
        n, c = g.shape[:2]
        plane = (xp.arange(c) * size)[:, None]  # where channel c's plane starts
        out = xp.empty((n, c, size), dtype=g.dtype)
        for i in range(n):
            flat = (index[i] + plane).ravel()  # (C, L): index[i] broadcast over channels
            out[i] = xp.bincount(flat, weights=g[i].ravel(), minlength=c * size).reshape(c, size)
        return out

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        return PlaneGather.run(grad, index), None, None


# ----------------------------------------------------------------------- interpolate


def _source(n_in: int, n_out: int, align_corners: bool, scale_factor):
    """PyTorch's source coordinate (``area_pixel_compute_source_index``) of every output
    position of a linear mode: dst (in - 1) / (out - 1) with ``align_corners``, else
    (dst + 0.5) / s - 0.5 clamped at 0, s the given scale factor or out / in."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        return dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    return np.maximum((dst + 0.5) * scale - 0.5, 0.0)


def _linear_matrix(n_in: int, n_out: int, align_corners: bool, scale_factor):
    """(n_out, n_in): row i puts 1 - lambda on floor(src_i) and lambda on the next input
    position, lambda = src_i - floor(src_i) (both on the last one past the end)."""
    src = _source(n_in, n_out, align_corners, scale_factor)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0, 0.0, 1.0)
    i1 = np.minimum(i0 + 1, n_in - 1)
    a = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    a[rows, i0] = 1.0 - lam
    a[rows, i1] += lam  # one entry per row: i1 = i0 only where both are the last position
    return a


def _nearest_matrix(n_in: int, n_out: int, scale_factor):
    """(n_out, n_in): row i is one at min(floor(i s), in - 1), s = in / out or the inverse
    of the given scale factor, in float32 as PyTorch computes it (``nearest_idx``)."""
    dst = np.arange(n_out)
    if n_out == n_in:
        src = dst
    elif n_out == 2 * n_in:
        src = dst >> 1
    else:
        scale = np.float32(1.0 / scale_factor) if scale_factor else np.float32(n_in) / n_out
        src = np.minimum(np.floor(dst.astype(np.float32) * np.float32(scale)), n_in - 1)
    a = np.zeros((n_out, n_in))
    a[dst, src.astype(np.int64)] = 1.0
    return a


class Resample(Function):
    """y = x multiplied along each spatial axis by its interpolation matrix A_i (out, in).

    x: (N, C, *S) -> (N, C, *out). Linear and separable: dx = dy multiplied along each
    axis by A_i^T. ``mats`` are host matrices (constants): no gradient flows to them.
    """

    @staticmethod
    def forward(ctx, x, mats):
        xp = get_array_module(x)
        mats = [xp.asarray(a.astype(x.dtype)) for a in mats]
        ctx.save_for_backward(*mats)
        return _along_axes(xp, x, mats)

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        return _along_axes(xp, grad, [a.T for a in ctx.saved_tensors]), None


def _along_axes(xp, x, mats):
    """Multiply spatial axis 2+i of ``x`` by ``mats[i]`` (new, old); the last axis as
    ``x @ A^T`` (no transposed copies), the others moved next to last and back."""
    last = x.ndim - 1
    for i, a in enumerate(mats):
        axis = 2 + i
        if axis == last:
            x = x @ a.T
        else:
            x = xp.moveaxis(a @ xp.moveaxis(x, axis, -2), -2, axis)
    return x


_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _output_size(name, x, size, scale_factor, spatial, recompute_scale_factor):
    """(out sizes, scale factors for the coordinates) as PyTorch's ``interpolate``."""
    if (size is None) == (scale_factor is None):
        raise ValueError(
            f"{name}: only one of size or scale_factor should be defined"
            if size is not None
            else f"{name}: either size or scale_factor should be defined"
        )
    if size is not None:
        out = (size,) * spatial if isinstance(size, int) else tuple(int(s) for s in size)
        if len(out) != spatial:
            raise ValueError(
                f"{name}: input {tuple(x.shape)} has {spatial} spatial dimensions but "
                f"size {size} has {len(out)}; give one size per spatial dimension"
            )
        return out, (None,) * spatial
    if isinstance(scale_factor, (int, float)):
        scales = (float(scale_factor),) * spatial
    else:
        scales = tuple(float(s) for s in scale_factor)
    if len(scales) != spatial:
        raise ValueError(
            f"{name}: input {tuple(x.shape)} has {spatial} spatial dimensions but "
            f"scale_factor {scale_factor} has {len(scales)}"
        )
    out = tuple(math.floor(float(n) * s) for n, s in zip(x.shape[2:], scales))
    return out, (None,) * spatial if recompute_scale_factor else scales


def interpolate(
    x: Tensor,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
) -> Tensor:
    """Resize x: (N, C, *S) -> (N, C, *out), ``out`` = ``size`` or floor(S * scale_factor).

    Source coordinate of output position ``i`` along an axis (PyTorch's):

    * ``"nearest"``: floor(i * s) (at most in - 1), s = 1 / scale_factor when it is given
      (unless ``recompute_scale_factor``), else in / out;
    * ``"linear"`` (3-d x), ``"bilinear"`` (4-d), ``"trilinear"`` (5-d): with
      ``align_corners=True`` src = i (in - 1) / (out - 1), the corner pixels' centres
      line up; else src = (i + 0.5) s - 0.5, clamped at 0. The output mixes the two
      input positions around src with weights 1 - lambda and lambda, lambda = src -
      floor(src), along each axis in turn;
    * ``"area"``: adaptive average pooling to ``out``.
    """
    if mode not in ("nearest", "area", *_LINEAR_MODES):
        raise ValueError(
            f"interpolate: mode {mode!r} is not supported; use 'nearest', 'linear', "
            f"'bilinear', 'trilinear' or 'area'"
        )
    if x.ndim not in (3, 4, 5):
        raise ValueError(
            f"interpolate: expected a 3-d, 4-d or 5-d input (N, C, *spatial), got {tuple(x.shape)}"
        )
    spatial = x.ndim - 2
    linear = mode in _LINEAR_MODES
    if linear and _LINEAR_MODES[mode] != spatial:
        raise ValueError(
            f"interpolate: got {x.ndim}D input {tuple(x.shape)}, but {mode} mode needs "
            f"{_LINEAR_MODES[mode] + 2}D input"
        )
    if align_corners is not None and not linear:
        raise ValueError(
            "interpolate: align_corners option can only be set with the interpolating "
            f"modes: linear | bilinear | trilinear (got mode {mode!r})"
        )
    out, scales = _output_size(
        "interpolate", x, size, scale_factor, spatial, recompute_scale_factor
    )
    if min(out) < 1:
        raise ValueError(f"interpolate: output size {out} of input {tuple(x.shape)} is empty")
    if mode == "area":
        from .pool import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d

        pool = (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[spatial - 1]
        return pool(x, out)
    if linear:
        mats = [
            _linear_matrix(n, o, bool(align_corners), s)
            for n, o, s in zip(x.shape[2:], out, scales)
        ]
    else:
        mats = [_nearest_matrix(n, o, s) for n, o, s in zip(x.shape[2:], out, scales)]
    return Resample.apply(x, mats)


# ----------------------------------------------------------------------- grid_sample


def _unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    """Grid coordinate in [-1, 1] -> pixel coordinate: -1 and 1 are the centres of the
    corner pixels with ``align_corners`` ((g + 1) / 2 (size - 1)), else their outer
    edges (((g + 1) size - 1) / 2)."""
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def grid_sample(
    x: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = False,
) -> Tensor:
    """Sample x at the points of ``grid``.

    x: (N, C, H, W), grid: (N, H_out, W_out, 2) -> (N, C, H_out, W_out); or x:
    (N, C, D, H, W), grid: (N, D_out, H_out, W_out, 3) -> (N, C, D_out, H_out, W_out).
    ``grid[..., 0]`` is the x (width) coordinate, ``grid[..., 1]`` the y (height) one
    (and ``grid[..., 2]`` the depth one), each in [-1, 1] over the input (see
    :func:`_unnormalize` for ``align_corners``).

    ``"bilinear"``: with the pixel coordinates (u, v), u0 = floor(u), a = u - u0 and
    b = v - v0, the output is

        (1-a)(1-b) x[v0, u0] + a(1-b) x[v0, u0+1] + (1-a) b x[v0+1, u0] + a b x[v0+1, u0+1]

    (trilinear in 3-d: 8 corners, weights products of 3 factors). It is linear in x and
    the weights are polynomials in the grid, so both get gradients. ``"nearest"``: the
    pixel at (round(u), round(v)) (half to even), no gradient to the grid.
    ``padding_mode="zeros"``: corners outside the input read 0; ``"border"``: the
    coordinates are first clamped into the input, [0, size - 1].
    """
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"grid_sample: mode must be 'bilinear' or 'nearest', got {mode!r}")
    if padding_mode not in ("zeros", "border"):
        raise ValueError(
            f"grid_sample: padding_mode must be 'zeros' or 'border', got {padding_mode!r}"
        )
    spatial = x.ndim - 2
    if x.ndim not in (4, 5) or grid.ndim != x.ndim or grid.shape[-1] != spatial:
        raise ValueError(
            f"grid_sample: expected x (N, C, H, W) with grid (N, H_out, W_out, 2), or x "
            f"(N, C, D, H, W) with grid (N, D_out, H_out, W_out, 3); got x "
            f"{tuple(x.shape)} and grid {tuple(grid.shape)}"
        )
    if grid.shape[0] != x.shape[0]:
        raise ValueError(
            f"grid_sample: grid {tuple(grid.shape)} and x {tuple(x.shape)} have different "
            f"batch sizes"
        )
    one_function = fast.sampling.grid_sample(x.data, grid.data, mode)  # fast/sampling.py
    if one_function:
        return one_function.apply(x, grid, padding_mode, align_corners)
    xp = x.xp
    sizes = x.shape[2:]
    n, out = x.shape[0], grid.shape[1:-1]
    # pixel coordinate along spatial axis i: grid's last index counts the axes backwards
    coords = []
    for i, size in enumerate(sizes):
        u = _unnormalize(grid[..., spatial - 1 - i], size, align_corners)
        coords.append(u.clamp(0, size - 1) if padding_mode == "border" else u)
    steps = [math.prod(sizes[i + 1 :]) for i in range(spatial)]  # flat strides of a plane
    planes = x.reshape(n, x.shape[1], -1)  # (N, C, P)
    if mode == "nearest":
        nearest = [xp.rint(u.data).astype(np.int64) for u in coords]
        index, inside = _flat_index(xp, nearest, sizes, steps)
        picked = PlaneGather.apply(planes, index.reshape(n, 1, -1))
        return (picked * Tensor(inside.reshape(n, 1, -1).astype(x.dtype))).reshape(
            x.shape[:2] + out
        )
    lows = [xp.floor(u.data) for u in coords]
    fracs = [u - low for u, low in zip(coords, lows)]  # a, b (and c): Tensors of the grid
    lows = [low.astype(np.int64) for low in lows]
    indices, weights = [], []
    for corner in itertools.product((0, 1), repeat=spatial):
        index, inside = _flat_index(xp, [low + o for low, o in zip(lows, corner)], sizes, steps)
        weight = Tensor(inside.astype(x.dtype))  # 0 for a corner outside (zeros padding)
        for frac, o in zip(fracs, corner):
            weight = weight * (frac if o else 1 - frac)
        indices.append(index.reshape(n, -1))
        weights.append(weight.reshape(n, -1))
    k, length = len(indices), math.prod(out)
    index = xp.concatenate(indices, axis=1).reshape(n, 1, k * length)
    values = PlaneGather.apply(planes, index).reshape(n, x.shape[1], k, length)
    mixed = (values * _shape.stack(weights, 1).reshape(n, 1, k, length)).sum(axis=2)
    return mixed.reshape(x.shape[:2] + out)


def _flat_index(xp, points, sizes, steps):
    """Flat plane positions of integer ``points`` (one array per axis), clipped into the
    plane, and the mask of the points that were inside it."""
    inside = xp.ones(points[0].shape, dtype=bool)
    flat = 0
    for p, size, step in zip(points, sizes, steps):
        inside &= (p >= 0) & (p < size)
        flat = flat + xp.clip(p, 0, size - 1) * step
    return flat, inside


def _base_coordinates(size: int, align_corners: bool) -> np.ndarray:
    """PyTorch's ``linspace_from_neg_one``: the grid coordinates of the pixel centres,
    from -1 to 1 (times (size - 1) / size without ``align_corners``); 0 for one pixel."""
    if size <= 1:
        return np.zeros(max(size, 0))
    steps = np.linspace(-1.0, 1.0, size)
    return steps if align_corners else steps * (size - 1) / size


def affine_grid(theta: Tensor, size, align_corners: bool = False) -> Tensor:
    """The sampling grid of an affine map, for :func:`grid_sample`.

    theta: (N, 2, 3), size (N, C, H, W) -> grid (N, H, W, 2); theta: (N, 3, 4), size
    (N, C, D, H, W) -> (N, D, H, W, 3). grid[n, i, j] = theta[n] @ (x_j, y_i, 1), where
    (x_j, y_i) are output pixel j, i's centres in [-1, 1] coordinates.
    """
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise ValueError(
            f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
            f"respectively; got size {size}"
        )
    spatial = len(size) - 2
    if theta.ndim != 3 or theta.shape[1:] != (spatial, spatial + 1) or theta.shape[0] != size[0]:
        raise ValueError(
            f"affine_grid: expected a batch of {spatial}D affine matrices of shape "
            f"({size[0]}, {spatial}, {spatial + 1}) for size {size}; got theta "
            f"{tuple(theta.shape)}"
        )
    if min(size) <= 0:
        raise ValueError(f"affine_grid: expected a non-empty, positive output size, got {size}")
    out = size[2:]
    axes = [_base_coordinates(s, align_corners) for s in out]  # (D,) H, W
    mesh = np.meshgrid(*axes, indexing="ij")
    base = np.stack([*mesh[::-1], np.ones(out)], axis=-1)  # (*out, spatial + 1): x, y, (z), 1
    base = Tensor(theta.xp.asarray(base.reshape(1, -1, spatial + 1).astype(theta.dtype)))
    grid = base @ theta.transpose(1, 2)  # (N, prod(out), spatial)
    return grid.reshape((size[0],) + out + (spatial,))


# ----------------------------------------------------------------------- pad


class ConstantPad(Function):
    """y = x inside a frame of ``value``: y[crop] = x, widths (before, after) >= 0 per axis.

    Linear in x, so dx = dy[crop] (the frame got no gradient).
    """

    @staticmethod
    def forward(ctx, x, widths, value):
        xp = get_array_module(x)
        shape = tuple(n + b + a for n, (b, a) in zip(x.shape, widths))
        y = xp.full(shape, value, dtype=x.dtype)
        ctx.crop = tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, widths))
        y[ctx.crop] = x
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.crop], None, None


def _source_positions(mode: str, n: int, before: int, after: int):
    """Where each position of a padded axis reads from (positions -before .. n+after-1):
    reflect mirrors about the edge pixels, replicate repeats them, circular wraps."""
    i = np.arange(-before, n + after)
    if mode == "reflect":
        i = np.abs(i)
        return np.where(i > n - 1, 2 * (n - 1) - i, i)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    return i % n  # circular


def pad(x: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dimensions of x.

    ``pad`` lists the widths last dimension first, as PyTorch: (left, right) pads the last
    dimension, (left, right, top, bottom) the last two, and so on. ``"constant"`` fills
    with ``value`` (negative widths crop); ``"reflect"`` mirrors without repeating the
    edge (widths < size), ``"replicate"`` repeats the edge, ``"circular"`` wraps around.
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got {pad}")
    dims = len(pad) // 2
    if dims > x.ndim:
        raise ValueError(
            f"pad: padding {pad} pads {dims} dimensions but the input {tuple(x.shape)} has {x.ndim}"
        )
    widths = [(0, 0)] * (x.ndim - dims) + [(pad[2 * i], pad[2 * i + 1]) for i in range(dims)][::-1]
    if mode == "constant":
        crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(x.shape, widths))
        if any(b < 0 or a < 0 for b, a in widths):
            x = x[crop]
        widths = [(max(b, 0), max(a, 0)) for b, a in widths]
        return ConstantPad.apply(x, widths, 0.0 if value is None else float(value))
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
        )
    if value:
        raise ValueError(f"pad: padding mode {mode!r} doesn't take a value argument")
    if dims not in (1, 2, 3) or x.ndim not in (dims + 1, dims + 2):
        raise ValueError(
            f"pad: {mode} padding of {dims} dimension(s) needs a {dims + 1}-d or {dims + 2}-d "
            f"input, got {tuple(x.shape)} with padding {pad}"
        )
    for axis in range(x.ndim - dims, x.ndim):
        n, (before, after) = x.shape[axis], widths[axis]
        if min(before, after) < 0:
            raise ValueError(f"pad: {mode} padding {pad} must not be negative")
        limit = n if mode == "reflect" else n + 1 if mode == "circular" else math.inf
        if max(before, after) >= limit or n == 0:
            raise ValueError(
                f"pad: {mode} padding ({before}, {after}) of dimension {axis} must be less "
                f"than its size {n} (input {tuple(x.shape)})"
            )
        if before or after:
            source = x.xp.asarray(_source_positions(mode, n, before, after))
            x = x[(slice(None),) * axis + (source,)]
    return x


# ----------------------------------------------------------------------- pixel shuffle


def pixel_shuffle(x: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): each group of r^2 channels becomes an r x r
    block of pixels; y[c, h r + i, w r + j] = x[c r^2 + i r + j, h, w]."""
    r = int(upscale_factor)
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise ValueError(
            f"pixel_shuffle expects an input (*, C, H, W) whose channels are divisible by "
            f"upscale_factor^2 = {r * r}, got {tuple(x.shape)}"
        )
    *lead, c, h, w = x.shape
    k = len(lead)
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (*, C, H, r, W, r)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(x: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of :func:`pixel_shuffle`."""
    r = int(downscale_factor)
    if x.ndim < 3 or x.shape[-2] % r or x.shape[-1] % r:
        raise ValueError(
            f"pixel_unshuffle expects an input (*, C, H, W) whose height and width are "
            f"divisible by downscale_factor = {r}, got {tuple(x.shape)}"
        )
    *lead, c, h, w = x.shape
    k = len(lead)
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (*, C, r, r, H, W)
    return y.reshape(*lead, c * r * r, h // r, w // r)
