"""Per-op overhead of the autograd engine.

A chain of 1,000 elementwise ops (alternately ``y * a`` and ``y + b``) on tensors of 16
elements, forward and backward. On data this small the arithmetic is negligible, so the
time per op is the price of the Python machinery: creating a node, wrapping a Tensor,
walking the graph. Compared with the same arithmetic written directly in NumPy (forward
and the hand-derived backward) and with PyTorch when it is installed.

    python benchmarks/overhead.py
"""

from __future__ import annotations

import numpy as np
from common import median_time, write_results

import minideep as md

N_OPS = 1000
SIZE = 16


def _values():
    """Start, factor and offset: the factor stays near 1 so 500 products stay finite."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SIZE).astype(np.float32)
    a = rng.uniform(0.999, 1.001, SIZE).astype(np.float32)
    b = (0.01 * rng.standard_normal(SIZE)).astype(np.float32)
    return x, a, b


def minideep_chain():
    x, a, b = (md.tensor(v, requires_grad=True) for v in _values())

    def step():
        y = x
        for _ in range(N_OPS // 2):
            y = y * a
            y = y + b
        y.sum().backward()
        x.grad = a.grad = b.grad = None

    return step


def numpy_chain():
    x, a, b = _values()

    def step():
        ys = [x]
        for _ in range(N_OPS // 2):
            ys.append(ys[-1] * a)
            ys.append(ys[-1] + b)
        g = np.ones_like(x)
        ga, gb = np.zeros_like(a), np.zeros_like(b)
        for k in range(N_OPS // 2 - 1, -1, -1):
            gb = gb + g  # y = y + b
            ga = ga + g * ys[2 * k]  # y = y * a
            g = g * a
        return g, ga, gb

    return step


def torch_chain(torch):
    x, a, b = (torch.tensor(v, requires_grad=True) for v in _values())

    def step():
        y = x
        for _ in range(N_OPS // 2):
            y = y * a
            y = y + b
        y.sum().backward()
        x.grad = a.grad = b.grad = None

    return step


def main() -> None:
    rows = []
    contenders = [("minideep", minideep_chain()), ("numpy (no autograd)", numpy_chain())]
    try:
        import torch

        torch.set_num_threads(1)
        contenders.append(("pytorch", torch_chain(torch)))
    except ImportError:
        pass
    for name, step in contenders:
        seconds = median_time(step, repeats=30, warmup=3)
        rows.append(
            {
                "library": name,
                "ms per chain": seconds * 1e3,
                "us per op (fwd+bwd)": seconds / N_OPS * 1e6,
            }
        )
    base = rows[1]["us per op (fwd+bwd)"]
    for row in rows:
        row["x numpy"] = row["us per op (fwd+bwd)"] / base
    write_results(
        "overhead",
        rows,
        f"Autograd overhead: {N_OPS}-op elementwise chain on {SIZE}-element tensors",
    )


if __name__ == "__main__":
    main()
