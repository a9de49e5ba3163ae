"""conv2d on frame-sized inputs: minideep (im2col + one GEMM) against PyTorch's CPU conv.

Batch 32, 64x64 frames, 3x3 kernels with padding 1, for a first layer (3 -> 16
channels) and a middle layer (16 -> 32); float32. "forward" runs without recording a
graph; "forward+backward" computes the gradients of the input, the weight and the bias
for a fixed upstream gradient. PyTorch gets the same number of threads as NumPy's BLAS.
Times are medians of repeats after warm-up; GFLOP/s counts 2 * N * C_out * H_out * W_out
* C_in * kH * kW per forward and three times that per forward+backward.

    python benchmarks/conv.py
"""

from __future__ import annotations

import os

import numpy as np
from common import median_time, write_results

import minideep as md
from minideep.bench import blas_threads
from minideep.nn import functional as F

CASES = [  # (batch, C_in, C_out, H, W, kernel, padding)
    (32, 3, 16, 64, 64, 3, 1),
    (32, 16, 32, 64, 64, 3, 1),
]
REPEATS = 15
TARGET = 1.5  # forward+backward within 1.5x of PyTorch


def _arrays(n, c_in, c_out, h, w, k):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, h, w)).astype(np.float32)
    weight = rng.standard_normal((c_out, c_in, k, k)).astype(np.float32) * 0.1
    bias = rng.standard_normal(c_out).astype(np.float32)
    return x, weight, bias


def minideep_fns(x, weight, bias, padding):
    xs = [md.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    with md.no_grad():
        upstream = md.ones_like(F.conv2d(*xs, padding=padding))

    def forward():
        with md.no_grad():
            F.conv2d(*xs, padding=padding)

    def forward_backward():
        for t in xs:
            t.grad = None
        F.conv2d(*xs, padding=padding).backward(upstream)

    return forward, forward_backward


def torch_fns(torch, x, weight, bias, padding):
    ts = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    with torch.no_grad():
        upstream = torch.ones_like(torch.nn.functional.conv2d(*ts, padding=padding))

    def forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(*ts, padding=padding)

    def forward_backward():
        for t in ts:
            t.grad = None
        torch.nn.functional.conv2d(*ts, padding=padding).backward(upstream)

    return forward, forward_backward


def main() -> None:
    try:
        import torch

        torch.set_num_threads(blas_threads())
    except ImportError:
        torch = None
    load_before = os.getloadavg()[0]
    rows = []
    for n, c_in, c_out, h, w, k, p in CASES:
        x, weight, bias = _arrays(n, c_in, c_out, h, w, k)
        h_out, w_out = h + 2 * p - k + 1, w + 2 * p - k + 1
        flops = 2 * n * c_out * h_out * w_out * c_in * k * k
        ours = minideep_fns(x, weight, bias, p)
        theirs = torch_fns(torch, x, weight, bias, p) if torch is not None else (None, None)
        for label, mult, ours_fn, theirs_fn in zip(
            ("forward", "forward+backward"), (1, 3), ours, theirs
        ):
            t_ours = median_time(ours_fn, repeats=REPEATS)
            row = {
                "shape": f"{n}x{c_in}x{h}x{w} -> {c_out}, {k}x{k} pad {p}",
                "pass": label,
                "minideep ms": round(t_ours * 1e3, 2),
                "minideep GFLOP/s": round(mult * flops / t_ours / 1e9, 1),
            }
            if theirs_fn is not None:
                t_theirs = median_time(theirs_fn, repeats=REPEATS)
                row["torch ms"] = round(t_theirs * 1e3, 2)
                row["torch GFLOP/s"] = round(mult * flops / t_theirs / 1e9, 1)
                row["ratio"] = round(t_ours / t_theirs, 2)
            rows.append(row)
    notes = (
        f"Threads: NumPy BLAS {blas_threads()}, PyTorch "
        f"{torch.get_num_threads() if torch is not None else '-'}. "
        f"OPENBLAS_CORETYPE: {os.environ.get('OPENBLAS_CORETYPE', 'unset')}. "
        f"ratio = minideep time / PyTorch time; target for forward+backward: <= {TARGET}. "
        f"Medians of {REPEATS} repeats after 3 warm-up calls. 1-minute load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run"
        + (
            " (above the core count: other processes shared the CPU, so every time is inflated)."
            if max(load_before, os.getloadavg()[0]) > (os.cpu_count() or 1)
            else " (below the core count: a quiet machine)."
        )
    )
    write_results("conv", rows, "conv2d, float32, CPU", notes)
    print(notes)


if __name__ == "__main__":
    main()
