"""Gradient checks of the spatial ops: 1-d and grouped convolutions, transposed
convolutions in 1-d and 3-d, adaptive max pooling, interpolation, grid sampling, affine
grids, padding and pixel shuffles. Grid points are drawn at random: a coordinate within
a finite-difference step of a whole pixel (where bilinear weights have kinks) has
probability zero."""

import numpy as np

from minideep.nn import functional as F
from minideep.ops.sampling import PlaneGather, PlaneScatter

from . import Case, integers, randn, uniform

_index = np.array([[[0, 4, 4, 2, 7]], [[3, 3, 1, 0, 6]]])  # (2, 1, 5), repeats on purpose

CASES = [
    # convolutions: 1-d, grouped, depthwise, transposed in 1-d and 3-d
    Case(
        "conv1d stride 2 padding 1",
        lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
        [randn(2, 3, 7), randn(4, 3, 3), randn(4)],
    ),
    Case(
        "conv1d groups 2 dilation 2",
        lambda x, w: F.conv1d(x, w, dilation=2, groups=2),
        [randn(2, 4, 8), randn(6, 2, 2)],
    ),
    Case(
        "conv2d groups 2 stride (2, 1) padding 1",
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, groups=2),
        [randn(2, 4, 5, 4), randn(6, 2, 3, 2), randn(6)],
    ),
    Case(
        "conv2d depthwise",
        lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=3),
        [randn(2, 3, 4, 5), randn(6, 1, 3, 3), randn(6)],
    ),
    Case(
        "conv3d groups 2",
        lambda x, w: F.conv3d(x, w, padding=(0, 1, 1), groups=2),
        [randn(1, 4, 3, 3, 4), randn(4, 2, 2, 2, 3)],
    ),
    Case(
        "conv_transpose1d stride 2 output_padding 1",
        lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1),
        [randn(2, 3, 4), randn(3, 2, 3), randn(2)],
    ),
    Case(
        "conv_transpose2d output_padding past the stride (dilation 2)",
        lambda x, w, b: F.conv_transpose2d(x, w, b, dilation=2, output_padding=1),
        [randn(1, 2, 3, 3), randn(2, 2, 2, 3), randn(2)],
    ),
    Case(
        "conv_transpose1d groups 2 output_padding past the stride",
        lambda x, w: F.conv_transpose1d(x, w, stride=2, dilation=3, output_padding=2, groups=2),
        [randn(2, 4, 3), randn(4, 1, 3)],
    ),
    Case(
        "conv_transpose2d groups 2",
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, groups=2),
        [randn(2, 4, 3, 2), randn(4, 3, 2, 3), randn(6)],
    ),
    Case(
        "conv_transpose3d",
        lambda x, w, b: F.conv_transpose3d(x, w, b, stride=(1, 2, 2), padding=(0, 1, 0)),
        [randn(1, 2, 2, 3, 2), randn(2, 3, 2, 3, 2), randn(3)],
    ),
    Case(
        "conv_transpose3d depthwise dilation 2",
        lambda x, w: F.conv_transpose3d(x, w, dilation=2, groups=2),
        [randn(1, 2, 2, 2, 3), randn(2, 1, 2, 2, 2)],
    ),
    # pooling
    Case("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, (3, 2)), [randn(2, 2, 5, 5)]),
    Case(
        "adaptive_max_pool3d", lambda x: F.adaptive_max_pool3d(x, (2, 3, 2)), [randn(1, 2, 3, 4, 3)]
    ),
    Case("adaptive_avg_pool1d", lambda x: F.adaptive_avg_pool1d(x, 3), [randn(2, 2, 7)]),
    # interpolation
    Case(
        "interpolate nearest",
        lambda x: F.interpolate(x, scale_factor=(1.5, 2), mode="nearest"),
        [randn(2, 2, 3, 4)],
    ),
    Case(
        "interpolate bilinear",
        lambda x: F.interpolate(x, size=(5, 7), mode="bilinear"),
        [randn(2, 2, 3, 4)],
    ),
    Case(
        "interpolate bilinear align_corners downscale",
        lambda x: F.interpolate(x, size=(3, 2), mode="bilinear", align_corners=True),
        [randn(1, 2, 5, 4)],
    ),
    Case(
        "interpolate trilinear scale 1.5",
        lambda x: F.interpolate(x, scale_factor=1.5, mode="trilinear"),
        [randn(1, 2, 2, 3, 2)],
    ),
    Case(
        "interpolate linear",
        lambda x: F.interpolate(x, size=7, mode="linear", align_corners=False),
        [randn(2, 2, 4)],
    ),
    # grid sampling (grid points: see _grid)
    Case(
        "grid_sample bilinear zeros",
        lambda x, g: F.grid_sample(x, g),
        [randn(2, 2, 4, 5), uniform(-1.2, 1.2, 2, 3, 4, 2)],
    ),
    Case(
        "grid_sample bilinear border align_corners",
        lambda x, g: F.grid_sample(x, g, padding_mode="border", align_corners=True),
        [randn(1, 2, 4, 3), uniform(-1.2, 1.2, 1, 3, 3, 2)],
    ),
    Case(
        "grid_sample nearest",
        lambda x, g: F.grid_sample(x, g.detach(), mode="nearest"),
        [randn(2, 2, 4, 5), uniform(-1.1, 1.1, 2, 3, 2, 2)],
    ),
    Case(
        "grid_sample 3-d",
        lambda x, g: F.grid_sample(x, g),
        [randn(1, 2, 3, 4, 3), uniform(-1.2, 1.2, 1, 2, 2, 3, 3)],
    ),
    Case(
        "affine_grid",
        lambda t: F.affine_grid(t, (2, 1, 3, 4)),
        [randn(2, 2, 3)],
    ),
    Case(
        "affine_grid 3-d align_corners",
        lambda t: F.affine_grid(t, (1, 1, 2, 3, 2), align_corners=True),
        [randn(1, 3, 4)],
    ),
    Case(
        "affine_grid into grid_sample",
        lambda x, t: F.grid_sample(x, F.affine_grid(0.6 * t, (2, 2, 3, 3))),
        [randn(2, 2, 4, 4), randn(2, 2, 3)],
    ),
    # padding and pixel shuffles
    Case("pad constant", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), [randn(2, 2, 3, 3)]),
    Case("pad constant negative", lambda x: F.pad(x, (-1, 2, 1, -1)), [randn(1, 2, 3, 4)]),
    Case("pad reflect", lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [randn(1, 2, 3, 4)]),
    Case(
        "pad replicate 3-d",
        lambda x: F.pad(x, (1, 2, 0, 1, 2, 0), "replicate"),
        [randn(1, 1, 2, 3, 2)],
    ),
    Case("pad circular", lambda x: F.pad(x, (2, 1), mode="circular"), [randn(2, 2, 3)]),
    Case("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), [randn(2, 8, 2, 3)]),
    Case("pixel_unshuffle", lambda x: F.pixel_unshuffle(x, 2), [randn(2, 2, 4, 2)]),
    # the gather/scatter pair grid_sample and adaptive max pooling are made of
    Case("plane gather", lambda x: PlaneGather.apply(x, _index), [randn(2, 3, 8)]),
    Case("plane scatter", lambda g: PlaneScatter.apply(g, _index, 8), [randn(2, 3, 5)]),
    Case(
        "plane gather per channel",
        lambda x, i: PlaneGather.apply(x, i.data),
        [randn(2, 3, 6), integers(6, 2, 3, 4)],
    ),
]
