"""The floors under the layers that stay far from PyTorch: the NumPy steps each cannot do
without, timed alone, beside minideep's and PyTorch's whole layer (forward+backward).

    python benchmarks/floors.py [--rounds 3]

Each case is one layer at the lessons' shape (``layers.py``), or one training step of
``minideep bench``: the NumPy steps its fast path makes (each timed alone, with its
arrays hot in cache, times the number of times the layer needs it), minideep's whole
layer and PyTorch's, the three timed back to back in every round (the best of the rounds
is kept: this machine's speed drifts). Where the steps alone come near PyTorch's whole
layer, a 2x target is out of reach without a fused kernel. Timed alone, the steps can
take longer than the fast path that runs them in another order. Writes
``results/floors.md`` and ``.json``.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import median_time, write_results

import minideep as md
from minideep import bench

B, H, W = 16, 48, 64  # the lessons' frames


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _pieces_pass(a):
    """One elementwise pass over ``a`` in 256 KB pieces (in cache, as the fast paths)."""
    ones = np.ones(65536, a.dtype)
    pieces = a.reshape(-1, 65536)

    def one_pass():
        for piece in pieces:
            np.multiply(piece, ones, out=piece)

    return one_pass


def _layer(lib, build, shapes, rng, grid=False):
    """forward+backward of ``build(lib)`` on float32 inputs of ``shapes``."""
    arrays = [_f32(rng, *s) for s in shapes]
    if grid:
        arrays[1] = np.tanh(arrays[1])  # sampling positions inside the frame
    inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
    f = build(lib)
    up = lib.tensor(_f32(rng, *f(*inputs).shape))

    def run():
        for t in inputs:
            t.grad = None
        f(*inputs).backward(up)

    return run


def _cases(rng, torch):
    """(name, [(step, times, fn)], minideep's run, PyTorch's run or None)."""
    cases = []

    def both(build, shapes, grid=False):
        theirs = _layer(torch, build, shapes, rng, grid) if torch is not None else None
        return _layer(md, build, shapes, rng, grid), theirs

    # depthwise convolution: nine offsets, each a multiply-add of a shifted run by a
    # per-channel weight (forward, and again for the input gradient), and a sum of
    # products per offset for the weight gradient
    x = _f32(rng, B, 32, (H + 2) * (W + 2))
    y = np.zeros((B, 32, H * (W + 2)), np.float32)
    w = _f32(rng, 32, 1)
    scratch = np.empty_like(y)
    run = slice(W + 3, W + 3 + H * (W + 2))

    def multiply_add():
        for i in range(0, B, 2):  # two samples at a time, as the fast path's chunks
            np.multiply(x[i : i + 2, :, run], w, out=scratch[i : i + 2])
            y[i : i + 2] += scratch[i : i + 2]

    def product_sum():
        for i in range(0, B, 2):
            np.einsum("ncl,ncl->c", y[i : i + 2], x[i : i + 2, :, run])

    steps = [
        ("multiply-add of one offset's run (9 forward, 9 input gradient)", 18, multiply_add),
        ("sum of products of one offset (weight gradient)", 9, product_sum),
    ]
    dw = lambda nn: nn.nn.Conv2d(32, 32, 3, padding=1, groups=32)  # noqa: E731
    cases.append(("Conv2d depthwise 32 k3 p1", steps, *both(dw, [(B, 32, H, W)])))

    # LayerNorm(128) on 16x64 tokens: five steps against one value per row (two forward,
    # three backward), eleven other passes (sums, steps against the weight)
    rows, same = np.ones((1024, 128), np.float32), np.ones((1024, 128), np.float32)
    per_row = np.ones((1024, 1), np.float32)

    def against_rows():
        np.multiply(rows, per_row, out=rows)

    def between_arrays():
        np.multiply(rows, same, out=rows)

    steps = [
        ("step against one value per row, in place", 5, against_rows),
        ("step between two arrays of its shape, in place", 11, between_arrays),
    ]
    cases.append(("LayerNorm 128", steps, *both(lambda lib: lib.nn.LayerNorm(128), [(B, 64, 128)])))

    # GroupNorm, Sigmoid, GELU: the fewest elementwise passes forward+backward (GroupNorm:
    # two sums, normalise, scale and shift, two sums and dx; Sigmoid: -x, exp, +1, 1/. and
    # the backward's 1-y, *y, *g; GELU: Phi's 26 passes, x Phi, a backward of 7)
    one_pass = _pieces_pass(np.ones((B, 16, H, W), np.float32))
    for name, count, build in (
        ("GroupNorm 4 groups", 8, lambda lib: lib.nn.GroupNorm(4, 16)),
        ("Sigmoid", 7, lambda lib: lib.nn.Sigmoid()),
        ("GELU", 34, lambda lib: lib.nn.GELU()),
    ):
        steps = [("elementwise pass over (16, 16, 48, 64), in cache", count, one_pass)]
        cases.append((name, steps, *both(build, [(B, 16, H, W)])))

    # grid_sample: 4 corners x 16 channels x 3072 points read, and added back
    plane, index = _f32(rng, 16, H * W), rng.integers(0, H * W, 4 * H * W)
    values = np.empty((16, 4 * H * W), np.float32)

    def gather():
        np.take(plane, index, axis=1, out=values, mode="wrap")

    def scatter():
        np.bincount(index, minlength=H * W)

    steps = [
        ("gather of one sample's corners (take)", B, gather),
        ("scatter of one plane's corners (bincount, no weights)", B * 16, scatter),
    ]

    def sample(lib):
        return lambda x, g: lib.nn.functional.grid_sample(x, g, align_corners=False)

    cases.append(
        ("grid_sample bilinear", steps, *both(sample, [(B, 16, H, W), (B, H, W, 2)], grid=True))
    )

    # the mlp and lstm steps: their matrix products alone (NumPy calls OpenBLAS; PyTorch's
    # CPU build calls MKL for the same products)
    xs, w1, h1, w2 = _f32(rng, 64, 784), _f32(rng, 128, 784), _f32(rng, 64, 128), _f32(rng, 10, 128)
    d1, d2 = _f32(rng, 64, 128), _f32(rng, 64, 10)

    def mlp_products():
        xs @ w1.T, h1 @ w2.T, d2.T @ h1, d2 @ w2, d1.T @ xs

    seq, w_ih, w_hh = _f32(rng, 512, 256), _f32(rng, 512, 256), _f32(rng, 512, 128)
    h, dgates, gates, h_all = (
        _f32(rng, 32, 128),
        _f32(rng, 32, 512),
        _f32(rng, 512, 512),
        _f32(rng, 512, 128),
    )
    w_hh_t = np.ascontiguousarray(w_hh.T)

    def lstm_products():
        seq @ w_ih.T  # the input projection of all 16 steps
        for _ in range(16):
            h @ w_hh_t  # each step's recurrent product, forward
            dgates @ w_hh  # and backward
        gates @ w_ih, gates.T @ seq, gates.T @ h_all  # dx, dW_ih, dW_hh

    for name, products, count in (("mlp", mlp_products, 5), ("lstm", lstm_products, 36)):
        theirs = None
        if torch is not None:
            theirs = bench._torch_step(torch, name, bench.DEFAULT_BATCH[name], "cpu")
        ours = bench._minideep_step(name, bench.DEFAULT_BATCH[name], "cpu")
        steps = [(f"its {count} matrix products (OpenBLAS), all together", 1, products)]
        cases.append((f"training step: {name}", steps, ours, theirs))
    return cases


def _timed(fn) -> float:
    for _ in range(25):  # PyTorch's depthwise convolution took about 20 calls to speed up
        fn()
    return median_time(fn, repeats=20)


def _rows(rounds: int):
    torch = bench._torch()
    if torch is not None:
        torch.set_num_threads(2)
    rows = []
    for name, steps, ours, theirs in _cases(np.random.default_rng(0), torch):
        best = {}
        for _ in range(rounds):  # the three back to back in each round
            for key, fn in [(s[0], s[2]) for s in steps] + [("ours", ours), ("theirs", theirs)]:
                if fn is not None:
                    best[key] = min(best.get(key, np.inf), _timed(fn))
        floor = sum(count * best[step] for step, count, _ in steps)
        row = {
            "layer": name,
            "NumPy steps alone, ms": round(floor * 1e3, 3),
            "the steps": "; ".join(
                f"{count} x {step} ({best[step] * 1e3:.3g} ms)" for step, count, _ in steps
            ),
            "minideep ms": round(best["ours"] * 1e3, 3),
        }
        if theirs is not None:
            row["PyTorch ms"] = round(best["theirs"] * 1e3, 3)
            row["steps / PyTorch"] = round(floor / best["theirs"], 2)
            row["minideep / PyTorch"] = round(best["ours"] / best["theirs"], 2)
        rows.append(row)
        print(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    write_results(
        "floors",
        _rows(args.rounds),
        "What the slowest layers cannot do without in NumPy, beside the whole layers",
        notes=f"Best of {args.rounds} rounds, in each the steps, minideep's layer and "
        "PyTorch's back to back, each warmed up with 25 calls and timed as the median of 20; "
        "PyTorch on 2 threads. NumPy's elementwise steps run on one core.",
    )


if __name__ == "__main__":
    main()
