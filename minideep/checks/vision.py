"""Gradient checks of md.vision.ops: RoIAlign and its adjoint, and the box losses."""

import numpy as np

import minideep as md
from minideep.vision import ops
from minideep.vision.ops import RoIAlignBackward

from . import Case, constant, positive, randn, uniform

# RoIs (batch index, x1, y1, x2, y2) on an 8x8 map: inside, across the border, tiny
_ROIS = np.array(
    [[0, 1.3, 0.7, 6.2, 5.9], [1, -1.4, 2.2, 8.9, 9.6], [1, 3.1, 3.3, 3.6, 4.1]], dtype=np.float64
)


def _boxes(corner, size):
    """Valid xyxy boxes from top-left corners (K, 2) and positive sizes (K, 2)."""
    return md.cat([corner, corner + size], dim=-1)


def _roi_align_backward(g):
    table, _ = ops.sampling_table(md.zeros(2, 3, 8, 8, dtype=md.float64), _ROIS, 3, 1.0, 2)
    return RoIAlignBackward.apply(g, table, (2, 3, 8, 8))


CASES = [
    Case("roi_align", lambda x: ops.roi_align(x, _ROIS, 3, 1.0, 2), [randn(2, 3, 8, 8)]),
    Case(
        "roi_align adaptive aligned, list of boxes",
        lambda x: ops.roi_align(x, [_ROIS[:1, 1:], _ROIS[1:, 1:]], (2, 3), 0.5, -1, True),
        [randn(2, 2, 8, 8)],
    ),
    Case("roi_align backward (scatter)", _roi_align_backward, [randn(3, 3, 3, 3)]),
    Case(
        "box_iou",
        lambda a, s, b, t: ops.box_iou(_boxes(a, s), _boxes(b, t)),
        [uniform(0, 2, 3, 2), positive(3, 2), uniform(0, 2, 4, 2), positive(4, 2)],
    ),
    Case(
        "generalized_box_iou",
        lambda a, s, b, t: ops.generalized_box_iou(_boxes(a, s), _boxes(b, t)),
        [uniform(0, 3, 3, 2), positive(3, 2), uniform(0, 3, 2, 2), positive(2, 2)],
    ),
    Case(
        "generalized_box_iou_loss",
        lambda a, s, b, t: ops.generalized_box_iou_loss(_boxes(a, s), _boxes(b, t), "mean"),
        [uniform(0, 2, 5, 2), positive(5, 2), uniform(0, 2, 5, 2), positive(5, 2)],
    ),
    Case(
        "sigmoid_focal_loss",
        lambda x, t: ops.sigmoid_focal_loss(x, t, reduction="sum"),
        [randn(4, 3), constant(4, 3)],
    ),
]
