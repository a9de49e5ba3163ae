"""What each CPU fast path buys over its reference algorithm (``md.fast_paths(False)``).

Each row times one op's forward+backward, at the lessons' shapes (batch 16 at 48x64, as
in ``layers.py``) or at the shapes of the ``minideep bench`` training steps (float32,
batch 32), alternating fast paths on and off in the same process, and the four training
steps likewise. "reference / fast" is the speed-up.

    python benchmarks/fast_paths.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from common import RESULTS, median_time

import minideep as md
from minideep import bench
from minideep.bench import format_table, save_results
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
        reps = REPEATS * (10 if median_time(run, repeats=3) < 2e-3 else 1)  # short: more
        for _ in range(3):  # alternate, keep the best median of each
            for enabled in (True, False):
                with md.fast_paths(enabled):
                    t = median_time(run, repeats=reps)
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
    memory = _freed_memory_rows()
    per_row = _rows_unbuffered_rows()
    print(format_table(rows))
    print(format_table(memory))
    print(format_table(per_row))
    save_results(
        "fast_paths",
        {
            "Fast paths against their references (forward+backward)": rows,
            "Keeping freed memory (glibc malloc, fresh processes)": memory,
            "One value per row of a contiguous block (fast.memory.rows_unbuffered)": per_row,
        },
        RESULTS,
        notes="Written by benchmarks/fast_paths.py. The fast paths: minideep/fast/; "
        "keeping freed memory: minideep/fast/memory.py.",
    )


# LayerNorm(128) on 16x64 tokens in a plain loop: its arrays (512 KB) are made and freed
# on every call. Whether glibc then trims its heap (and every call pays page faults)
# depends on where the arrays land: in this loop it does; with the input's float64 draw
# freed before the loop (a hole the arrays reuse), it does not.
FREED_MEMORY_CHILD = r"""
import json, resource, statistics, time
import numpy as np
import minideep as md
rng = np.random.default_rng(0)
frames = rng.standard_normal((16, 64, 128)).astype(np.float32)
upstream = rng.standard_normal((16, 64, 128)).astype(np.float32)
norm = md.nn.LayerNorm(128)
x = md.tensor(frames, requires_grad=True)
def call():
    x.grad = None
    norm(x).backward(upstream)
for _ in range(50):
    call()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
times = []
for _ in range(300):
    t = time.perf_counter(); call(); times.append(time.perf_counter() - t)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 300
print(json.dumps([statistics.median(times), faults]))
"""


def _freed_memory_rows(rounds: int = 5) -> list[dict]:
    """LayerNorm's loop with malloc as it is and with freed memory kept, in alternating
    fresh processes (the setting is made at import): median ms per call, page faults."""
    found = {"0": [], "1": []}
    for _ in range(rounds):
        for keep in ("0", "1"):
            env = dict(os.environ, MINIDEEP_KEEP_FREED_MEMORY=keep)
            out = subprocess.run(
                [sys.executable, "-c", FREED_MEMORY_CHILD],
                capture_output=True, text=True, check=True, env=env,
            )  # fmt: skip
            found[keep].append(json.loads(out.stdout))
    rows = []
    for keep, label in (("0", "malloc as it is"), ("1", "freed memory kept (default)")):
        ms = sorted(t for t, _ in found[keep])[len(found[keep]) // 2] * 1e3
        faults = sorted(f for _, f in found[keep])[len(found[keep]) // 2]
        rows.append(
            {"LayerNorm 128, (16, 64, 128), a plain loop": label, "ms per call": ms,
             "page faults per call": faults}
        )  # fmt: skip
    return rows


def _rows_unbuffered_rows(rounds: int = 5) -> list[dict]:
    """A step between a C-contiguous block and one value per row, in NumPy's default
    buffered loop and under ``rows_unbuffered``, alternating; beside it the same step
    against a scalar, one plain pass over the block (best median of ``rounds``)."""
    from minideep.fast.memory import rows_unbuffered

    rng = np.random.default_rng(0)
    y = rng.standard_normal((16, 16, 48, 64)).astype(np.float32)
    bias = rng.standard_normal((16, 1, 1)).astype(np.float32)
    block = rng.standard_normal((32, 3072)).astype(np.float32)
    factor = rng.standard_normal((32, 1)).astype(np.float32)
    out = np.empty_like(block)
    cases = [
        ("y += bias, y (16, 16, 48, 64), bias (16, 1, 1)", 3072,
         lambda: np.add(y, bias, out=y), lambda: np.add(y, np.float32(0.5), out=y)),
        ("block * factor, (32, 3072) * (32, 1), in cache", 3072,
         lambda: np.multiply(block, factor, out=out),
         lambda: np.multiply(block, np.float32(0.5), out=out)),
    ]  # fmt: skip
    rows = []
    for name, length, step, scalar in cases:
        best = {}

        def unbuffered(step=step, length=length):
            with rows_unbuffered(length):
                step()

        for _ in range(rounds):
            for key, fn in (("default", step), ("unbuffered", unbuffered), ("scalar", scalar)):
                t = median_time(fn, repeats=200)
                best[key] = min(best.get(key, t), t)
        rows.append(
            {"case": name, "default ms": best["default"] * 1e3,
             "rows_unbuffered ms": best["unbuffered"] * 1e3,
             "against a scalar ms": best["scalar"] * 1e3,
             "default / rows_unbuffered": best["default"] / best["unbuffered"]}
        )  # fmt: skip
    return rows


def _row(name, times):
    return {
        "case": name,
        "fast ms": times[True] * 1e3,
        "reference ms": times[False] * 1e3,
        "reference / fast": times[False] / times[True],
    }


if __name__ == "__main__":
    main()
