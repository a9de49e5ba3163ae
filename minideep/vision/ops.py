"""torchvision.ops: box geometry, non-maximum suppression, RoIAlign and detection losses.

Boxes are ``(..., 4)`` tensors, ``(x1, y1, x2, y2)`` ("xyxy") unless a format says
otherwise, with ``x1 <= x2`` and ``y1 <= y2``. The box functions and both losses are
compositions of Tensor ops, differentiable to any order as torchvision's are; ``nms`` and
``batched_nms`` return indices (no gradient); ``roi_align`` is one linear ``Function``
of its input (the boxes only choose where it samples), whose backward is its adjoint.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function, no_grad
from ..backend import get_array_module
from ..ops.loss import binary_cross_entropy_with_logits
from ..ops.math import maximum, minimum, where
from ..ops.shape import stack
from ..tensor import Tensor

__all__ = [
    "batched_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "generalized_box_iou",
    "generalized_box_iou_loss",
    "nms",
    "roi_align",
    "sigmoid_focal_loss",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def _as_tensor(boxes) -> Tensor:
    return boxes if isinstance(boxes, Tensor) else Tensor(np.asarray(boxes))


def _check_boxes(name: str, boxes: Tensor) -> None:
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{name}: boxes must have shape (..., 4), got {tuple(boxes.shape)}")


def _check_format(name: str, fmt: str) -> None:
    if fmt not in BOX_FORMATS:
        raise ValueError(f"{name}: unsupported box format {fmt!r}; expected one of {BOX_FORMATS}")


# ----------------------------------------------------------------------- box geometry


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes ``(..., 4)`` between "xyxy" (corners), "xywh" (top-left corner,
    width, height) and "cxcywh" (centre, width, height), through "xyxy":

        xywh -> xyxy:    (x, y, x + w, y + h)
        cxcywh -> xyxy:  (cx - w/2, cy - h/2, cx + w/2, cy + h/2)
        xyxy -> xywh:    (x1, y1, x2 - x1, y2 - y1)
        xyxy -> cxcywh:  ((x1 + x2)/2, (y1 + y2)/2, x2 - x1, y2 - y1)
    """
    boxes = _as_tensor(boxes)
    _check_format("box_convert", in_fmt)
    _check_format("box_convert", out_fmt)
    _check_boxes("box_convert", boxes)
    if in_fmt == out_fmt:
        return boxes + 0  # a copy, as torchvision's boxes.clone()
    a, b, c, d = (boxes[..., i] for i in range(4))
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return stack([a, b, c, d], dim=-1)


def box_area(boxes: Tensor, fmt: str = "xyxy") -> Tensor:
    """Area of each box: ``(x2 - x1) * (y2 - y1)``, or ``w * h``. (..., 4) -> (...)."""
    boxes = _as_tensor(boxes)
    _check_format("box_area", fmt)
    _check_boxes("box_area", boxes)
    if fmt == "xyxy":
        return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return boxes[..., 2] * boxes[..., 3]


def _inter_union(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> tuple[Tensor, Tensor]:
    """Pairwise intersection and union areas: (..., N, 4), (..., M, 4) -> (..., N, M) each.

    The intersection of two boxes is the box from the larger top-left corner to the
    smaller bottom-right corner, empty (width or height clamped to 0) when they miss."""
    area1, area2 = box_area(boxes1, fmt), box_area(boxes2, fmt)
    b1, b2 = boxes1[..., :, None, :], boxes2[..., None, :, :]
    if fmt == "xyxy":
        lt1, rb1, lt2, rb2 = b1[..., :2], b1[..., 2:], b2[..., :2], b2[..., 2:]
    elif fmt == "xywh":
        lt1, rb1 = b1[..., :2], b1[..., :2] + b1[..., 2:]
        lt2, rb2 = b2[..., :2], b2[..., :2] + b2[..., 2:]
    else:  # cxcywh
        lt1, rb1 = b1[..., :2] - b1[..., 2:] / 2, b1[..., :2] + b1[..., 2:] / 2
        lt2, rb2 = b2[..., :2] - b2[..., 2:] / 2, b2[..., :2] + b2[..., 2:] / 2
    wh = (minimum(rb1, rb2) - maximum(lt1, lt2)).clamp(min=0)  # (..., N, M, 2)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter, union


def box_iou(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> Tensor:
    """Intersection over union of every pair: (..., N, 4), (..., M, 4) -> (..., N, M).

    IoU(a, b) = area(a ∩ b) / (area(a) + area(b) - area(a ∩ b))."""
    boxes1, boxes2 = _as_tensor(boxes1), _as_tensor(boxes2)
    _check_format("box_iou", fmt)
    _check_boxes("box_iou", boxes1)
    _check_boxes("box_iou", boxes2)
    inter, union = _inter_union(boxes1, boxes2, fmt)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Generalised IoU of every pair of xyxy boxes: (..., N, 4), (..., M, 4) -> (..., N, M).

    GIoU = IoU - (area(C) - union) / area(C), with C the smallest box enclosing both:
    1 for equal boxes, tending to -1 for small boxes far apart (Rezatofighi et al. 2019)."""
    boxes1, boxes2 = _as_tensor(boxes1), _as_tensor(boxes2)
    _check_boxes("generalized_box_iou", boxes1)
    _check_boxes("generalized_box_iou", boxes2)
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    b1, b2 = boxes1[..., :, None, :], boxes2[..., None, :, :]
    lt = minimum(b1[..., :2], b2[..., :2])
    rb = maximum(b1[..., 2:], b2[..., 2:])
    wh = (rb - lt).clamp(min=0)
    enclosing = wh[..., 0] * wh[..., 1]
    return iou - (enclosing - union) / enclosing


# ----------------------------------------------------------------------- losses


def _reduce(loss: Tensor, reduction: str, name: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{name}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2,
    reduction: str = "none",
) -> Tensor:
    """RetinaNet's focal loss (Lin et al. 2017) on logits, elementwise.

    With p = sigmoid(x) and p_t = p if the target is 1 else 1 - p:
    ``loss = alpha_t * (1 - p_t)^gamma * BCE(x, target)``, alpha_t = alpha for positives
    and 1 - alpha for negatives (no weighting when alpha = -1). (1 - p_t)^gamma shrinks
    the loss of the easy, confidently right elements, which dominate dense detection.
    """
    if not (0 <= alpha <= 1) and alpha != -1:
        raise ValueError(f"sigmoid_focal_loss: alpha must be in [0, 1] or -1, got {alpha}")
    p = inputs.sigmoid()
    ce = binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction, "sigmoid_focal_loss")


def generalized_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """``1 - GIoU`` of corresponding xyxy boxes: (..., 4), (..., 4) -> (...).

    Unlike 1 - IoU it still has a gradient when the boxes do not overlap: the enclosing
    box term pulls them together. ``eps`` keeps the divisions finite."""
    boxes1, boxes2 = _as_tensor(boxes1), _as_tensor(boxes2)
    _check_boxes("generalized_box_iou_loss", boxes1)
    _check_boxes("generalized_box_iou_loss", boxes2)
    x1, y1, x2, y2 = (boxes1[..., i] for i in range(4))
    x1g, y1g, x2g, y2g = (boxes2[..., i] for i in range(4))
    xi1, yi1 = maximum(x1, x1g), maximum(y1, y1g)
    xi2, yi2 = minimum(x2, x2g), minimum(y2, y2g)
    overlap = (yi2 > yi1).data & (xi2 > xi1).data
    inter = where(overlap, (xi2 - xi1) * (yi2 - yi1), 0.0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    xc1, yc1 = minimum(x1, x1g), minimum(y1, y1g)
    xc2, yc2 = maximum(x2, x2g), maximum(y2, y2g)
    enclosing = (xc2 - xc1) * (yc2 - yc1)
    loss = 1 - (iou - (enclosing - union) / (enclosing + eps))
    return _reduce(loss, reduction, "generalized_box_iou_loss")


# ----------------------------------------------------------------------- NMS


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression: the indices (int64) of the boxes kept, by
    decreasing score.

    Visit the boxes by decreasing score (a stable sort: equal scores keep their order, as
    torchvision's CPU kernel does); keep a box unless a box kept before it overlaps it
    with IoU > ``iou_threshold``. boxes (N, 4) xyxy, scores (N,) -> (K,)."""
    boxes, scores = _as_tensor(boxes), _as_tensor(scores)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(
            f"nms: expected boxes (N, 4) and scores (N,), got {tuple(boxes.shape)} and "
            f"{tuple(scores.shape)}"
        )
    xp = boxes.xp
    order = xp.argsort(-scores.data, kind="stable")
    with no_grad():
        sorted_boxes = Tensor(boxes.data[order])
        overlaps = box_iou(sorted_boxes, sorted_boxes).data > iou_threshold
    overlaps = backend.as_numpy(overlaps)  # the greedy walk is sequential: on the host
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return Tensor(order[xp.asarray(keep, dtype=np.int64)].astype(np.int64))


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category ``idxs`` (N,) independently; indices by decreasing score.

    The coordinate trick: shift the boxes of category c by ``c * (max coordinate + 1)``,
    so boxes of different categories never overlap, and run one ``nms``."""
    boxes, scores, idxs = _as_tensor(boxes), _as_tensor(scores), _as_tensor(idxs)
    if boxes.numel() == 0:
        return Tensor(boxes.xp.zeros((0,), dtype=np.int64))
    data = boxes.data
    offsets = idxs.data.astype(data.dtype) * (data.max() + 1)
    return nms(Tensor(data + offsets[:, None]), scores, iou_threshold)


# ----------------------------------------------------------------------- RoIAlign


class _SamplingTable:
    """RoIAlign as a weighted sum: output bin ``out_bin[j]`` receives ``weight[j]`` times the
    input pixel ``pixel[j]`` (an index into the N*H*W pixels), for every entry j: one per
    corner of the bilinear interpolation of each sampling point of each bin of each RoI."""

    def __init__(self, pixel, out_bin, weight, n_bins: int):
        self.pixel, self.out_bin, self.weight, self.n_bins = pixel, out_bin, weight, n_bins


def _route(rows, take, put, weight, n_out: int):
    """``out[put[j]] += weight[j] * rows[take[j]]`` for every j: (n_in, C) -> (n_out, C).

    Repeated ``put`` indices are summed by a bincount over (row, channel) positions (a
    scatter-add that NumPy and CuPy both do in one call)."""
    xp = get_array_module(rows)
    channels = rows.shape[1]
    values = rows[take] * weight[:, None]
    flat = put[:, None] * channels + xp.arange(channels)
    out = xp.bincount(flat.ravel(), weights=values.ravel(), minlength=n_out * channels)
    return out.reshape(n_out, channels).astype(rows.dtype, copy=False)


def _channels_last(a):
    """(A, C, P, Q) -> (A*P*Q, C): one row of channels per pixel."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def _channels_first(rows, shape):
    """(A*P*Q, C) -> (A, C, P, Q), the inverse of ``_channels_last``."""
    xp = get_array_module(rows)
    a, c, p, q = shape
    return xp.ascontiguousarray(rows.reshape(a, p, q, c).transpose(0, 3, 1, 2))


class RoIAlign(Function):
    """out = S x: each output bin a weighted sum of input pixels (see ``roi_align``).

    Linear in x for a fixed sampling table S, so dL/dx = S^T dL/dout, a scatter of the
    bins' gradients back onto the pixels they sampled (:class:`RoIAlignBackward`); the
    boxes get no gradient, as in torchvision."""

    @staticmethod
    def forward(ctx, x, table, out_shape):
        ctx.table, ctx.x_shape = table, x.shape
        rows = _route(_channels_last(x), table.pixel, table.out_bin, table.weight, table.n_bins)
        return _channels_first(rows, out_shape)

    @staticmethod
    def backward(ctx, grad):
        return RoIAlignBackward.run(grad, ctx.table, ctx.x_shape), None, None


class RoIAlignBackward(Function):
    """dx = S^T g: RoIAlign's backward, and its adjoint (so its backward is RoIAlign)."""

    @staticmethod
    def forward(ctx, g, table, x_shape):
        ctx.table, ctx.g_shape = table, g.shape
        n, _, h, w = x_shape
        rows = _route(_channels_last(g), table.out_bin, table.pixel, table.weight, n * h * w)
        return _channels_first(rows, (n, g.shape[1], h, w))

    @staticmethod
    def backward(ctx, grad):
        return RoIAlign.run(grad, ctx.table, ctx.g_shape), None, None


def _linear_interpolation(coords, size: int):
    """The two neighbours of each sample coordinate along one axis and their weights,
    with torchvision's border rules: a sample beyond half a pixel outside the map
    (coord < -1 or coord > size) is 0; otherwise coord is clamped to [0, size - 1].

    coords: (P, G) -> low, high (P, G) int64 and w_low, w_high (P, G)."""
    inside = (coords >= -1.0) & (coords <= size)
    coords = np.maximum(coords, 0)
    low = coords.astype(np.int64)  # truncation = floor, coords >= 0
    at_edge = low >= size - 1
    low = np.where(at_edge, size - 1, low)
    high = np.where(at_edge, size - 1, low + 1)
    frac = np.where(at_edge, 0, coords - low).astype(coords.dtype)
    return low, high, (1 - frac) * inside, frac * inside


def _sampling_entries(rois, x_shape, output_size, spatial_scale, sampling_ratio, aligned, dt):
    """The sampling table of all RoIs (see ``roi_align``'s docstring for the grid).

    Built on the host from the few box coordinates, in the input's dtype as torchvision
    computes them; the caller moves the index and weight arrays to the input's device."""
    _, _, height, width = x_shape
    ph_n, pw_n = output_size
    offset = dt.type(0.5 if aligned else 0.0)
    scale = dt.type(spatial_scale)
    pixels, bins, weights = [], [], []
    for k, roi in enumerate(rois.astype(dt)):
        batch = int(roi[0])
        x1, y1, x2, y2 = (c * scale - offset for c in roi[1:])
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:  # torchvision forces malformed RoIs to be at least 1x1
            roi_w, roi_h = max(roi_w, dt.type(1)), max(roi_h, dt.type(1))
        bin_h, bin_w = roi_h / dt.type(ph_n), roi_w / dt.type(pw_n)
        grid_h = sampling_ratio if sampling_ratio > 0 else max(math.ceil(roi_h / ph_n), 0)
        grid_w = sampling_ratio if sampling_ratio > 0 else max(math.ceil(roi_w / pw_n), 0)
        count = max(grid_h * grid_w, 1)
        iy, ix = np.arange(grid_h, dtype=dt) + dt.type(0.5), np.arange(grid_w, dtype=dt) + 0.5
        y = y1 + np.arange(ph_n, dtype=dt)[:, None] * bin_h + iy * bin_h / dt.type(max(grid_h, 1))
        x = x1 + np.arange(pw_n, dtype=dt)[:, None] * bin_w + ix * bin_w / dt.type(max(grid_w, 1))
        y_lo, y_hi, wy_lo, wy_hi = _linear_interpolation(y, height)  # (PH, grid_h)
        x_lo, x_hi, wx_lo, wx_hi = _linear_interpolation(x, width)  # (PW, grid_w)
        # axes (ph, iy, corner_y, pw, ix, corner_x): every corner of every sample
        rows, wy = np.stack([y_lo, y_hi], -1), np.stack([wy_lo, wy_hi], -1)
        cols, wx = np.stack([x_lo, x_hi], -1), np.stack([wx_lo, wx_hi], -1)
        pixel = (batch * height + rows[:, :, :, None, None, None]) * width + cols
        weight = wy[:, :, :, None, None, None] * wx / dt.type(count)
        out_bin = k * ph_n * pw_n + np.arange(ph_n)[:, None, None, None] * pw_n + np.arange(pw_n)
        out_bin = out_bin[..., None, None]
        shape = np.broadcast_shapes(pixel.shape, out_bin.shape)
        pixels.append(np.broadcast_to(pixel, shape).ravel())
        bins.append(np.broadcast_to(out_bin, shape).ravel())
        weights.append(np.broadcast_to(weight, shape).ravel())
    empty = [np.zeros(0, np.int64)]
    return (
        np.concatenate(pixels + empty),
        np.concatenate(bins + empty),
        np.concatenate(weights + [np.zeros(0, dt)]),
    )


def _rois(boxes, x: Tensor):
    """(K, 5) RoIs (batch index, x1, y1, x2, y2) on the host from a (K, 5) Tensor or a
    list of (K_i, 4) Tensors, one per image."""
    if isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            b = backend.as_numpy(b.data if isinstance(b, Tensor) else b)
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(
                    f"roi_align: each tensor in the boxes list must be (K_i, 4), got "
                    f"{tuple(b.shape)} at position {i}"
                )
            parts.append(np.concatenate([np.full((len(b), 1), i, dtype=b.dtype), b], 1))
        return np.concatenate(parts or [np.zeros((0, 5), x.dtype)], 0)
    rois = backend.as_numpy(boxes.data if isinstance(boxes, Tensor) else boxes)
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError(
            f"roi_align: boxes must be a (K, 5) tensor (batch index, x1, y1, x2, y2) or a "
            f"list of (K_i, 4) tensors, got shape {tuple(rois.shape)}"
        )
    return rois


def roi_align(
    input: Tensor,
    boxes,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (He et al., Mask R-CNN): a fixed-size feature map for each box, sampled
    bilinearly from ``input``. input (N, C, H, W), boxes (K, 5) ``(batch index, x1, y1,
    x2, y2)`` or a list of (K_i, 4) per image -> (K, C, PH, PW), ``output_size = (PH, PW)``.

    The sampling grid, torchvision's exactly. Box corners are scaled to the feature map
    and shifted by half a pixel when ``aligned`` (pixel centres sit at +0.5):
    ``start = x1 * spatial_scale - 0.5 * aligned`` (likewise y); the RoI is
    ``roi_w = x2 * spatial_scale - 0.5 * aligned - start`` wide, at least 1 when not
    aligned. It is cut into PH x PW bins of ``bin_h = roi_h / PH``, ``bin_w = roi_w / PW``.
    Each bin holds a ``g_h x g_w`` grid of sampling points, ``g_h = sampling_ratio`` if
    positive else ``ceil(roi_h / PH)`` (likewise g_w), at

        y = start_y + ph * bin_h + (iy + 0.5) * bin_h / g_h,   iy = 0 .. g_h - 1
        x = start_x + pw * bin_w + (ix + 0.5) * bin_w / g_w,   ix = 0 .. g_w - 1

    Each point is interpolated bilinearly from its four neighbouring pixels; a point with
    y < -1, y > H, x < -1 or x > W counts 0, otherwise y and x are clamped to >= 0, and a
    point past the last row (column) takes that row's (column's) value. The bin's value
    is the mean of its ``max(g_h * g_w, 1)`` points (0 for an empty grid).

    Differentiable with respect to ``input``, which it reads linearly: the gradient
    scatters each bin's gradient back onto the pixels it sampled, with the same weights.
    """
    table, out_shape = sampling_table(
        input, boxes, output_size, spatial_scale, sampling_ratio, aligned
    )
    return RoIAlign.apply(input, table, out_shape)


def sampling_table(
    input: Tensor,
    boxes,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> tuple[_SamplingTable, tuple]:
    """``roi_align``'s sampling table for ``input``'s shape, dtype and device, and the
    output shape (K, C, PH, PW)."""
    if input.ndim != 4:
        raise ValueError(f"roi_align: input must be (N, C, H, W), got {tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"roi_align: input must be floating point, got {input.dtype}")
    output_size = (output_size, output_size) if isinstance(output_size, int) else output_size
    ph_n, pw_n = (int(s) for s in output_size)
    rois = _rois(boxes, input)
    batch = rois[:, 0]
    if batch.size and (batch.min() < 0 or batch.max() >= input.shape[0]):
        raise ValueError(
            f"roi_align: the RoIs' batch indices must lie in [0, {input.shape[0]}) for an "
            f"input of shape {tuple(input.shape)}, got {sorted(set(batch.tolist()))}"
        )
    pixel, out_bin, weight = _sampling_entries(
        rois, input.shape, (ph_n, pw_n), spatial_scale, int(sampling_ratio), aligned, input.dtype
    )
    xp = input.xp
    table = _SamplingTable(
        xp.asarray(pixel), xp.asarray(out_bin), xp.asarray(weight), len(rois) * ph_n * pw_n
    )
    return table, (len(rois), input.shape[1], ph_n, pw_n)
