"""The spatial ops beside PyTorch on the CPU: depthwise convolution, bilinear upsampling
and grid sampling, forward+backward in float32, timed alternately in the same process.

    python benchmarks/layers_spatial.py
"""

from __future__ import annotations

import numpy as np
from common import median_time, write_results

import minideep as md
from minideep.nn import functional as F

REPEATS = 10


def _cases(rng):
    x_conv = rng.standard_normal((16, 32, 48, 64)).astype(np.float32)
    w_conv = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    b_conv = rng.standard_normal(32).astype(np.float32)
    x_small = rng.standard_normal((16, 16, 24, 32)).astype(np.float32)
    x_big = rng.standard_normal((16, 16, 48, 64)).astype(np.float32)
    grid = rng.uniform(-1.1, 1.1, (16, 48, 64, 2)).astype(np.float32)
    return [
        (
            "conv2d depthwise 32ch k3 p1, (16, 32, 48, 64)",
            [x_conv, w_conv, b_conv],
            lambda f, x, w, b: f.conv2d(x, w, b, padding=1, groups=32),
        ),
        (
            "interpolate bilinear x2, (16, 16, 24, 32) -> 48x64",
            [x_small],
            lambda f, x: f.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
        ),
        (
            "grid_sample bilinear zeros, (16, 16, 48, 64)",
            [x_big, grid],
            lambda f, x, g: f.grid_sample(x, g, align_corners=False),
        ),
    ]


def _minideep_step(arrays, fn):
    inputs = [md.tensor(a, requires_grad=True) for a in arrays]
    upstream = md.tensor(np.ones(fn(F, *inputs).shape, np.float32))

    def step():
        for t in inputs:
            t.grad = None
        fn(F, *inputs).backward(upstream)

    return step


def _torch_step(torch, arrays, fn):
    inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    upstream = torch.ones(fn(torch.nn.functional, *inputs).shape)

    def step():
        for t in inputs:
            t.grad = None
        fn(torch.nn.functional, *inputs).backward(upstream)

    return step


def main() -> None:
    import torch

    rows = []
    for name, arrays, fn in _cases(np.random.default_rng(0)):
        ours, theirs = _minideep_step(arrays, fn), _torch_step(torch, arrays, fn)
        times = {}
        for _ in range(3):  # alternate, keep the best median of each
            for key, step in (("minideep", ours), ("torch", theirs)):
                t = median_time(step, repeats=REPEATS)
                times[key] = min(times.get(key, t), t)
        rows.append(
            {
                "case": name,
                "minideep ms": times["minideep"] * 1e3,
                "torch ms": times["torch"] * 1e3,
                "minideep / torch": times["minideep"] / times["torch"],
            }
        )
    write_results(
        "layers_spatial",
        rows,
        "Spatial ops, forward+backward, float32, beside PyTorch CPU",
        notes="Written by benchmarks/layers_spatial.py. The ops: minideep/ops/conv.py "
        "(GroupedConvolution), minideep/ops/sampling.py.",
    )


if __name__ == "__main__":
    main()
