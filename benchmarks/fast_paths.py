"""What each CPU fast path buys over its reference algorithm (``md.fast_paths(False)``).

Each row times one op's forward+backward, at the lessons' shapes (batch 16 at 48x64, as
in ``layers.py``) or at the shapes of the ``minideep bench`` training steps (float32,
batch 32), alternating fast paths on and off in the same process, and the four training
steps likewise. "reference / fast" is the speed-up.

    python benchmarks/fast_paths.py
"""

from __future__ import annotations

import numpy as np
from common import median_time, write_results

import minideep as md
from minideep import bench
from minideep.nn import functional as F

REPEATS = 15


def _tensor(rng, *shape, grad=True):
    return md.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=grad)


def _op_cases():
    rng = np.random.default_rng(0)
    x1 = _tensor(rng, 32, 3, 64, 64, grad=False)
    w1, b1 = _tensor(rng, 16, 3, 3, 3), _tensor(rng, 16)
    x2 = _tensor(rng, 32, 16, 32, 32)
    w2, b2 = _tensor(rng, 32, 16, 3, 3), _tensor(rng, 32)
    x3 = _tensor(rng, 32, 16, 32, 32)
    wt = _tensor(rng, 8, 16, 4, 4)
    a = _tensor(rng, 32, 16, 64, 64)
    seq = _tensor(rng, 16, 32, 256)
    md.manual_seed(0)
    lstm = md.nn.LSTM(256, 128)
    # the lessons' shapes: batch 16 at 48x64 (as in benchmarks/layers.py)
    f1 = _tensor(rng, 16, 16, 48, 64)
    f32 = _tensor(rng, 16, 32, 48, 64)
    w_one, w_s2 = _tensor(rng, 1, 16, 3, 3), _tensor(rng, 32, 16, 3, 3)
    w_dw = _tensor(rng, 32, 1, 3, 3)
    half = _tensor(rng, 16, 32, 24, 32)
    w_up = _tensor(rng, 32, 16, 4, 4)
    rows = _tensor(rng, 16, 64, 128)
    grid = md.tensor(np.tanh(rng.standard_normal((16, 48, 64, 2))).astype(np.float32))
    q, k, v = (_tensor(rng, 16, 4, 64, 32) for _ in range(3))
    md.manual_seed(0)
    bn, gn, ln = md.nn.BatchNorm2d(16), md.nn.GroupNorm(4, 16), md.nn.LayerNorm(128)
    lessons = [
        ("conv2d 16->1 k3 p1, 48x64", lambda: F.conv2d(f1, w_one, padding=1)),
        ("conv2d 16->32 k3 s2 p1, 48x64", lambda: F.conv2d(f1, w_s2, stride=2, padding=1)),
        ("conv2d depthwise 32 k3 p1, 48x64", lambda: F.conv2d(f32, w_dw, padding=1, groups=32)),
        (
            "conv_transpose2d 32->16 k4 s2 p1, 24x32",
            lambda: F.conv_transpose2d(half, w_up, stride=2, padding=1),
        ),
        ("max_pool2d 3 s2 p1, (16, 16, 48, 64)", lambda: F.max_pool2d(f1, 3, 2, 1)),
        ("adaptive_avg_pool2d 1, (16, 32, 24, 32)", lambda: F.adaptive_avg_pool2d(half, 1)),
        ("BatchNorm2d training, (16, 16, 48, 64)", lambda: bn(f1)),
        ("GroupNorm 4 groups, (16, 16, 48, 64)", lambda: gn(f1)),
        ("LayerNorm 128, (16, 64, 128)", lambda: ln(rows)),
        ("gelu (16, 16, 48, 64)", lambda: F.gelu(f1)),
        ("sigmoid (16, 16, 48, 64)", lambda: md.sigmoid(f1)),
        ("grid_sample bilinear, (16, 16, 48, 64)", lambda: F.grid_sample(f1, grid)),
        (
            "scaled_dot_product_attention (16, 4, 64, 32)",
            lambda: F.scaled_dot_product_attention(q, k, v),
        ),
    ]
    return lessons + [
        (
            "conv2d 3->16 k3 p1, 64x64 (dW, db)",
            lambda: F.conv2d(x1, w1, b1, padding=1),
        ),
        ("conv2d 16->32 k3 p1, 32x32 (dx, dW, db)", lambda: F.conv2d(x2, w2, b2, padding=1)),
        ("conv2d 16->32 k3 s2 p1, 32x32", lambda: F.conv2d(x2, w2, b2, stride=2, padding=1)),
        ("conv2d 16->8 k4 s2 p1, 32x32", lambda: F.conv2d(x3, wt, stride=2, padding=1)),
        ("max_pool2d 2, (32, 16, 64, 64)", lambda: F.max_pool2d(a, 2)),
        ("relu (32, 16, 64, 64)", lambda: F.relu(a)),
        ("LSTM 256->128, 16 steps", lambda: lstm(seq)[0]),
    ]


def _fwd_bwd(fn):
    out = fn()
    upstream = np.ones(out.shape, out.dtype)

    def run():
        y = fn()
        y.backward(upstream)

    return run


def main() -> None:
    rows = []
    for name, fn in _op_cases():
        run = _fwd_bwd(fn)
        times = {}
        for _ in range(3):  # alternate, keep the best median of each
            for enabled in (True, False):
                with md.fast_paths(enabled):
                    t = median_time(run, repeats=REPEATS)
                times[enabled] = min(times.get(enabled, t), t)
        rows.append(_row(name, times))
    for name in bench.WORKLOADS:
        step = bench._minideep_step(name, bench.DEFAULT_BATCH[name], "cpu")
        reps = REPEATS * {"tiny": 20, "mlp": 10}.get(name, 1)
        times = {}
        for _ in range(3):
            for enabled in (True, False):
                with md.fast_paths(enabled):
                    t = median_time(step, repeats=reps)
                times[enabled] = min(times.get(enabled, t), t)
        rows.append(_row(f"training step: {name}", times))
    write_results(
        "fast_paths",
        rows,
        "Fast paths against their references (forward+backward)",
        notes="Written by benchmarks/fast_paths.py. The fast paths: minideep/fast/.",
    )


def _row(name, times):
    return {
        "case": name,
        "fast ms": times[True] * 1e3,
        "reference ms": times[False] * 1e3,
        "reference / fast": times[False] / times[True],
    }


if __name__ == "__main__":
    main()
