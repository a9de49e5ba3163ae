"""How cost grows with size: matmul and conv2d time vs size, GFLOP/s against the GEMM peak.

For each device present (NumPy on the CPU; CuPy on the GPU when available) it times a
square matmul of growing size and a 3x3 conv2d (16 -> 16 channels) over growing batches of
64x64 frames, takes the best matmul rate as the measured GEMM peak, and plots
time vs size and achieved GFLOP/s vs that peak. Small GPU work is dominated by launch
overhead: the GPU curve is flat until the work is large enough to fill the device.

    python benchmarks/scaling.py [--name scaling]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import RESULTS

import minideep as md
from minideep import bench
from minideep.nn import functional as F

MATMUL_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048)
CONV_BATCHES = (1, 2, 4, 8, 16, 32, 64)


def measure(device: str, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for n in MATMUL_SIZES:
        a = md.tensor(rng.standard_normal((n, n)), device=device)
        b = md.tensor(rng.standard_normal((n, n)), device=device)
        t = bench.time_on(device, lambda a=a, b=b: a @ b, repeats)
        rows.append({"op": "matmul", "device": device, "size": n, "ms": t * 1e3,
                     "GFLOP/s": 2 * n**3 / t / 1e9})  # fmt: skip
    w = md.tensor(rng.standard_normal((16, 16, 3, 3)), device=device, requires_grad=True)
    for batch in CONV_BATCHES:
        x = md.tensor(rng.standard_normal((batch, 16, 64, 64)), device=device, requires_grad=True)

        def step(x=x):
            F.conv2d(x, w, padding=1).sum().backward()
            x.grad = w.grad = None

        t = bench.time_on(device, step, repeats)
        flops = 3 * 2 * batch * 16 * 64 * 64 * 16 * 9
        rows.append({"op": "conv2d fwd+bwd", "device": device, "size": batch, "ms": t * 1e3,
                     "GFLOP/s": flops / t / 1e9})  # fmt: skip
    return rows


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for device in sorted({r["device"] for r in rows}):
        peak = max(r["GFLOP/s"] for r in rows if r["device"] == device and r["op"] == "matmul")
        panels = [(axes[0], "matmul", "n (n x n @ n x n)"),
                  (axes[1], "conv2d fwd+bwd", "batch of 16x64x64 frames")]  # fmt: skip
        for ax, op, xlabel in panels:
            sel = [r for r in rows if r["device"] == device and r["op"] == op]
            ax.loglog([r["size"] for r in sel], [r["ms"] for r in sel], "o-", label=device)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("ms")
            ax.set_title(f"{op}: time")
            share = [100 * r["GFLOP/s"] / peak for r in sel]
            style = "o-" if op == "matmul" else "s--"
            axes[2].semilogx([r["size"] for r in sel], share, style, label=f"{op} ({device})")
    axes[2].set_ylabel("% of the measured GEMM peak")
    axes[2].set_xlabel("size")
    axes[2].set_title("achieved / peak")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="scaling")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if md.cuda.is_available() else [])
    rows = [row for device in devices for row in measure(device, args.repeats)]
    peaks = {d: max(r["GFLOP/s"] for r in rows if r["device"] == d and r["op"] == "matmul")
             for d in devices}  # fmt: skip
    notes = "Measured GEMM peak: " + ", ".join(f"{d} {p:.0f} GFLOP/s" for d, p in peaks.items())
    print(bench.format_table(rows) + "\n" + notes)
    bench.save_results(args.name, {"time vs size": rows}, RESULTS, notes=notes)
    plot(rows, RESULTS / f"{args.name}.png")
    print(f"plot: {RESULTS / (args.name + '.png')}")


if __name__ == "__main__":
    main()
