"""The floors under the layers that stay far from PyTorch: the NumPy steps they cannot do
without, each timed alone, beside PyTorch's whole layer (forward+backward).

    python benchmarks/floors.py

Each row is one primitive at the shape of the lessons' layer (``layers.py``), times the
number of times the layer needs it (in the fast path's formulation). Their sum is what
the layer costs in NumPy even if everything else were free (each array hot in cache, no
call overhead); where it comes near PyTorch's whole layer, a 2x target is out of reach
without a fused kernel. Writes ``results/floors.md`` and ``.json``.
"""

from __future__ import annotations

import numpy as np
from common import median_time, write_results

from minideep.bench import _torch


def _warm_torch(run, calls=25):
    for _ in range(calls):
        run()
    return median_time(run, repeats=20)


def _rows():
    rng = np.random.default_rng(0)
    torch = _torch()
    rows = []

    def add(layer, step, count, seconds, note=""):
        rows.append(
            {
                "layer": layer,
                "NumPy step": step,
                "times": count,
                "ms each": seconds * 1e3,
                "ms in all": seconds * count * 1e3,
                "note": note,
            }
        )

    # depthwise convolution 32 k3 p1 at (16, 32, 48, 64): nine offsets, each one
    # multiply-add of a shifted run by a per-channel weight, forward, input gradient and
    # (as a product-sum) the weight gradient
    x = rng.standard_normal((16, 32, 50 * 66)).astype(np.float32)
    y = np.zeros((16, 32, 48 * 66), np.float32)
    w = rng.standard_normal((32, 1)).astype(np.float32)
    scratch = np.empty_like(y)

    def multiply_add():
        for i in range(0, 16, 2):  # two samples at a time, as the fast path's chunks
            np.multiply(x[i : i + 2, :, 67 : 67 + 48 * 66], w, out=scratch[i : i + 2])
            y[i : i + 2] += scratch[i : i + 2]

    add(
        "Conv2d depthwise 32 k3 p1",
        "multiply-add of one offset's run",
        18,
        median_time(multiply_add, repeats=20),
        "9 forward, 9 input gradient",
    )

    def product_sum():
        for i in range(0, 16, 2):
            np.einsum("ncl,ncl->c", y[i : i + 2], x[i : i + 2, :, 67 : 67 + 48 * 66])

    add(
        "Conv2d depthwise 32 k3 p1",
        "sum of products, one offset",
        9,
        median_time(product_sum, repeats=20),
        "weight gradient",
    )

    # LayerNorm(128) on 16x64 tokens: the steps against one value per row
    rows_ = rng.standard_normal((1024, 128)).astype(np.float32)
    out = rows_.copy()
    per_row = np.ones((1024, 1), np.float32)
    same = np.ones((1024, 128), np.float32)  # ones: the values stay as they are
    add(
        "LayerNorm 128",
        "in-place step against one value per row",
        5,
        median_time(lambda: np.multiply(out, per_row, out=out), repeats=200),
        "2 forward, 3 backward",
    )
    add(
        "LayerNorm 128",
        "in-place step between arrays of its shape",
        11,
        median_time(lambda: np.multiply(out, same, out=out), repeats=200),
        "its 11 other passes (sums, steps against the weight), each at least this",
    )

    # grid_sample bilinear at (16, 16, 48, 64): 4 corners x 16 channels x 3072 points
    plane = rng.standard_normal((16, 3072)).astype(np.float32)
    index = rng.integers(0, 3072, 4 * 3072)
    values = np.empty((16, 4 * 3072), np.float32)
    add(
        "grid_sample bilinear",
        "gather of one sample's corners (take)",
        16,
        median_time(lambda: np.take(plane, index, axis=1, out=values, mode="wrap"), repeats=50),
        "forward",
    )
    add(
        "grid_sample bilinear",
        "scatter of one plane's corners (bincount, no weights)",
        256,
        median_time(lambda: np.bincount(index, minlength=3072), repeats=100),
        "input gradient: 3.1M additions",
    )

    if torch is not None:
        torch.set_num_threads(2)
        cases = {
            "Conv2d depthwise 32 k3 p1": (
                torch.nn.Conv2d(32, 32, 3, padding=1, groups=32),
                (16, 32, 48, 64),
            ),
            "LayerNorm 128": (torch.nn.LayerNorm(128), (16, 64, 128)),
        }
        for name, (module, shape) in cases.items():
            t = torch.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
            up = torch.tensor(rng.standard_normal(shape).astype(np.float32))

            def run(module=module, t=t, up=up):
                t.grad = None
                module(t).backward(up)

            add(name, "PyTorch's whole layer, forward+backward", 1, _warm_torch(run))
        t = torch.tensor(
            rng.standard_normal((16, 16, 48, 64)).astype(np.float32), requires_grad=True
        )
        g = torch.tensor(
            np.tanh(rng.standard_normal((16, 48, 64, 2))).astype(np.float32), requires_grad=True
        )
        up = torch.tensor(rng.standard_normal((16, 16, 48, 64)).astype(np.float32))

        def sample():
            t.grad = g.grad = None
            torch.nn.functional.grid_sample(t, g, align_corners=False).backward(up)

        add(
            "grid_sample bilinear",
            "PyTorch's whole layer, forward+backward",
            1,
            _warm_torch(sample),
        )
    return rows


def main() -> None:
    write_results(
        "floors",
        _rows(),
        "What the slowest layers cannot do without in NumPy, beside PyTorch's whole layer",
        notes="Median of the timed repeats; PyTorch warmed up with 25 calls first, 2 threads. "
        "NumPy's elementwise steps run on one core.",
    )


if __name__ == "__main__":
    main()
