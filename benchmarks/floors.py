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

from minideep import bench
from minideep.bench import _torch


def _warm_torch(run, calls=25):
    for _ in range(calls):
        run()
    return median_time(run, repeats=20)


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


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

    # GroupNorm, Sigmoid, GELU at (16, 16, 48, 64): one elementwise pass over the
    # activations, times the fewest passes each layer's forward+backward can make in
    # NumPy (GroupNorm: sums and squares, normalise, scale and shift, then two sums and
    # dx; Sigmoid: -x, exp, +1, 1/. and the backward's 1-y, *y, *g; GELU: Phi's 26
    # passes, x Phi, and a backward of 7)
    big = rng.standard_normal((16, 16, 48, 64)).astype(np.float32)
    ones = np.ones(65536, np.float32)
    pieces = big.reshape(-1, 65536)  # 256 KB pieces, as the fast paths run them: in cache

    def one_pass():
        for piece in pieces:
            np.multiply(piece, ones, out=piece)

    seconds = median_time(one_pass, repeats=50)
    for layer, count in (("GroupNorm 4 groups", 8), ("Sigmoid", 7), ("GELU", 34)):
        add(layer, "one elementwise pass over (16, 16, 48, 64), in cache", count, seconds)

    # the mlp and lstm steps of `minideep bench`: their matrix products alone, in NumPy's
    # OpenBLAS (PyTorch's CPU build calls MKL for the same products)
    x, w1 = rng.standard_normal((64, 784)).astype(np.float32), _f32(rng, 128, 784)
    d1, w2, d2 = _f32(rng, 64, 128), _f32(rng, 10, 128), _f32(rng, 64, 10)
    h1 = _f32(rng, 64, 128)

    def mlp_products():
        x @ w1.T, h1 @ w2.T, d2.T @ h1, d2 @ w2, d1.T @ x

    add(
        "training step: mlp",
        "its five matrix products (OpenBLAS)",
        1,
        median_time(mlp_products, repeats=200),
    )
    seq, w_ih, w_hh = _f32(rng, 512, 256), _f32(rng, 512, 256), _f32(rng, 512, 128)
    h, dgates = _f32(rng, 32, 128), _f32(rng, 32, 512)
    w_hh_t, gates_all = np.ascontiguousarray(w_hh.T), _f32(rng, 512, 512)
    h_all = _f32(rng, 512, 128)

    def lstm_products():
        seq @ w_ih.T  # the input projection of all 16 steps
        for _ in range(16):
            h @ w_hh_t  # each step's recurrent product, forward
            dgates @ w_hh  # and backward
        gates_all @ w_ih, gates_all.T @ seq, gates_all.T @ h_all  # dx, dW_ih, dW_hh

    add(
        "training step: lstm",
        "its matrix products (OpenBLAS)",
        1,
        median_time(lstm_products, repeats=20),
    )

    if torch is not None:
        torch.set_num_threads(2)
        for name, module in (
            ("GroupNorm 4 groups", torch.nn.GroupNorm(4, 16)),
            ("Sigmoid", torch.nn.Sigmoid()),
            ("GELU", torch.nn.GELU()),
        ):
            t = torch.tensor(big, requires_grad=True)
            up = torch.tensor(rng.standard_normal(big.shape).astype(np.float32))

            def run_layer(module=module, t=t, up=up):
                t.grad = None
                module(t).backward(up)

            add(name, "PyTorch's whole layer, forward+backward", 1, _warm_torch(run_layer))
        for name in ("mlp", "lstm"):
            step = bench._torch_step(torch, name, bench.DEFAULT_BATCH[name], "cpu")
            add(f"training step: {name}", "PyTorch's whole step", 1, _warm_torch(step))
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
