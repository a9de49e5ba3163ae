"""Gradient checks of the layer ops: linear, convolution, pooling, normalisation,
dropout and the losses. Shapes are small and odd on purpose (finite differences cost
two forwards per input element), with strides, paddings and dilations that do not
divide evenly."""

import numpy as np

import minideep as md
from minideep import geometry
from minideep.nn import functional as F
from minideep.ops.conv import Col2Im, Im2Col
from minideep.ops.pool import AvgSpread, MaxGather, MaxRoute

from . import Case, Spec, constant, integers, randn, uniform

_GEOMETRY = ((3, 3), (2, 1), (1, 1), (1, 1))  # kernel, stride, padding, dilation
_POOL = ((3, 3), (2, 2), (1, 1), (1, 1))


def _dropout(a):
    md.manual_seed(0)  # the same mask on every forward of the check
    # drawn on the host so that the CPU and GPU suites see the same mask
    return F.dropout(a.cpu(), p=0.4).to(a.device)


def _bce_probs(p, t):
    return F.binary_cross_entropy(p, t)


_class_weight = np.array([0.5, 2.0, 1.0, 1.5])
_pos_weight = np.array([0.5, 3.0, 1.0])

CASES = [
    # linear
    Case("linear", lambda x, w, b: F.linear(x, w, b), [randn(4, 3), randn(5, 3), randn(5)]),
    Case("linear 3-d input no bias", lambda x, w: F.linear(x, w), [randn(2, 3, 4), randn(2, 4)]),
    Case(
        "linear vector input", lambda x, w, b: F.linear(x, w, b), [randn(3), randn(2, 3), randn(2)]
    ),
    # convolution
    Case(
        "conv2d padding 1",
        lambda x, w, b: F.conv2d(x, w, b, padding=1),
        [randn(2, 2, 5, 4), randn(3, 2, 3, 3), randn(3)],
    ),
    Case(
        "conv2d stride 2 odd size",
        lambda x, w: F.conv2d(x, w, stride=2, padding=(1, 0)),
        [randn(1, 2, 7, 6), randn(2, 2, 3, 2)],
    ),
    Case(
        "conv2d dilation 2 stride (2, 1)",
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=2, dilation=2),
        [randn(2, 1, 6, 5), randn(2, 1, 3, 3), randn(2)],
    ),
    # stride 1 runs on the padded grid on the CPU (ops/conv.py, Grid): odd shapes there
    Case(
        "conv2d stride 1 dilation (2, 1) padding (2, 0)",
        lambda x, w, b: F.conv2d(x, w, b, padding=(2, 0), dilation=(2, 1)),
        [randn(2, 2, 5, 6), randn(3, 2, 3, 2), randn(3)],
    ),
    Case(
        "conv2d stride 1 no padding",
        lambda x, w: F.conv2d(x, w),
        [randn(1, 3, 4, 7), randn(2, 3, 2, 3)],
    ),
    Case(
        "conv3d stride 1 padding (0, 1, 2)",
        lambda x, w, b: F.conv3d(x, w, b, padding=(0, 1, 2)),
        [randn(2, 2, 3, 4, 3), randn(2, 2, 2, 3, 2), randn(2)],
    ),
    Case(
        "conv3d",
        lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 2), padding=1),
        [randn(1, 2, 3, 4, 5), randn(2, 2, 2, 3, 3), randn(2)],
    ),
    Case(
        "conv_transpose2d",
        lambda x, w, b: F.conv_transpose2d(x, w, b),
        [randn(2, 3, 3, 4), randn(3, 2, 3, 3), randn(2)],
    ),
    Case(
        "conv_transpose2d stride 2 padding 1 output_padding 1",
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
        [randn(1, 2, 3, 3), randn(2, 3, 3, 2)],
    ),
    # pooling (uniform inputs: ties in max pooling have probability zero)
    Case("max_pool2d", lambda x: F.max_pool2d(x, 2), [randn(2, 2, 5, 4)]),
    Case(
        "max_pool2d overlapping padded",
        lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
        [randn(1, 2, 5, 6)],
    ),
    Case(
        "max_pool2d dilation",
        lambda x: F.max_pool2d(x, (2, 3), stride=1, dilation=(2, 1)),
        [randn(1, 1, 6, 5)],
    ),
    Case(
        "max_pool3d",
        lambda x: F.max_pool3d(x, (1, 2, 2), padding=(0, 1, 0)),
        [randn(1, 2, 3, 4, 5)],
    ),
    Case("avg_pool2d", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), [randn(2, 1, 5, 6)]),
    Case(
        "avg_pool2d without pad count",
        lambda x: F.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False),
        [randn(1, 2, 3, 4)],
    ),
    Case("avg_pool3d", lambda x: F.avg_pool3d(x, 2, stride=1), [randn(1, 1, 3, 3, 4)]),
    Case("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [randn(2, 2, 5, 7)]),
    Case("adaptive_avg_pool2d to 1", lambda x: F.adaptive_avg_pool2d(x, 1), [randn(2, 3, 3, 4)]),
    Case(
        "adaptive_avg_pool3d", lambda x: F.adaptive_avg_pool3d(x, (2, 1, 3)), [randn(1, 2, 3, 2, 5)]
    ),
    # normalisation
    Case(
        "batch_norm train (N, C, H, W)",
        lambda x, w, b: F.batch_norm(
            x,
            md.zeros(3, dtype=md.float64, device=x.device),
            md.ones(3, dtype=md.float64, device=x.device),
            w,
            b,
            training=True,
        ),
        [randn(4, 3, 2, 3), randn(3), randn(3)],
    ),
    Case(
        "batch_norm train (N, C) no affine",
        lambda x: F.batch_norm(x, None, None, training=True),
        [randn(5, 4)],
    ),
    Case(
        "batch_norm train (N, C, L)",
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [randn(3, 2, 4), randn(2), randn(2)],
    ),
    Case(
        "batch_norm eval",
        lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=False),
        [randn(3, 2, 2, 2), constant(2), Spec((2,), "positive", grad=False), randn(2), randn(2)],
    ),
    # dropout, reseeded inside so that the mask is the same on every forward
    Case("dropout", _dropout, [randn(4, 5)]),
    # losses
    Case("mse_loss", lambda a, t: F.mse_loss(a, t), [randn(3, 4), randn(3, 4)]),
    Case("mse_loss sum", lambda a, t: F.mse_loss(a, t, reduction="sum"), [randn(5), constant(5)]),
    Case(
        "mse_loss none", lambda a, t: F.mse_loss(a, t, reduction="none"), [randn(2, 3), randn(2, 3)]
    ),
    Case("cross_entropy", lambda z, t: F.cross_entropy(z, t), [randn(5, 4), integers(4, 5)]),
    Case(
        "cross_entropy (N, C, d) sum",
        lambda z, t: F.cross_entropy(z, t, reduction="sum"),
        [randn(2, 3, 4), integers(3, 2, 4)],
    ),
    Case(
        "cross_entropy weight ignore_index smoothing",
        lambda z, t: F.cross_entropy(
            z,
            md.tensor(np.where(np.arange(6) == 2, -100, t.numpy()), device=t.device),
            weight=md.tensor(_class_weight, dtype=md.float64, device=z.device),
            label_smoothing=0.2,
        ),
        [randn(6, 4), integers(4, 6)],
    ),
    Case(
        "cross_entropy none",
        lambda z, t: F.cross_entropy(z, t, reduction="none", label_smoothing=0.1),
        [randn(4, 3), integers(3, 4)],
    ),
    Case(
        "nll_loss",
        lambda lp, t: F.nll_loss(
            lp, t, weight=md.tensor(_class_weight, dtype=md.float64, device=lp.device)
        ),
        [randn(5, 4), integers(4, 5)],
    ),
    Case(
        "nll_loss (N, C, d) none",
        lambda lp, t: F.nll_loss(lp, t, reduction="none"),
        [randn(2, 3, 2), integers(3, 2, 2)],
    ),
    Case(
        "binary_cross_entropy_with_logits",
        lambda x, t: F.binary_cross_entropy_with_logits(x, t),
        [randn(4, 3), uniform(0, 1, 4, 3)],
    ),
    Case(
        "binary_cross_entropy_with_logits weights sum",
        lambda x, t: F.binary_cross_entropy_with_logits(
            x,
            t,
            weight=md.tensor(
                np.array([[1.0], [2.0], [0.5], [1.0]]), dtype=md.float64, device=x.device
            ),
            pos_weight=md.tensor(_pos_weight, dtype=md.float64, device=x.device),
            reduction="sum",
        ),
        [uniform(-4, 4, 4, 3), uniform(0, 1, 4, 3)],
    ),
    Case(
        "binary_cross_entropy",
        _bce_probs,
        [uniform(0.05, 0.95, 3, 4), uniform(0, 1, 3, 4)],
    ),
    Case(
        "binary_cross_entropy weight none",
        lambda p, t: F.binary_cross_entropy(
            p,
            t,
            weight=md.tensor(np.array([1.0, 0.5, 2.0]), dtype=md.float64, device=p.device),
            reduction="none",
        ),
        [uniform(0.05, 0.95, 2, 3), constant(2, 3)],
    ),
    # the adjoint pairs the backwards of conv and pooling are made of (for create_graph)
    Case("im2col", lambda x: Im2Col.apply(x, geometry, *_GEOMETRY), [randn(2, 2, 5, 4)]),
    Case(
        "col2im",
        lambda c: Col2Im.apply(c, geometry, (2, 2, 5, 4), *_GEOMETRY),
        [randn(2, 18, 12)],
    ),
    Case(
        "max route",
        lambda g, a: MaxRoute.apply(g, a.data, (1, 2, 5, 6), *_POOL),
        [randn(1, 2, 3, 3), integers(9, 1, 2, 3, 3)],
    ),
    Case(
        "max gather",
        lambda x, a: MaxGather.apply(x, a.data, (1, 2, 5, 6), *_POOL),
        [randn(1, 2, 5, 6), integers(9, 1, 2, 3, 3)],
    ),
    Case(
        "avg spread",
        lambda g: AvgSpread.apply(g, 9, (1, 2, 5, 6), (3, 3), (2, 2), (1, 1), True),
        [randn(1, 2, 3, 3)],
    ),
]
