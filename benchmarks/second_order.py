"""The cost of a second-order step: a Hessian-vector product against a gradient.

For the ``minideep bench`` models (float32, their default batches), times

* a gradient: ``autograd.grad(loss, params)``;
* a Hessian-vector product: ``g = grad(loss, params, create_graph=True)``, then
  ``grad(sum(g * v), params)``,

in minideep and in PyTorch, alternating in the same process, and reports each library's
ratio HVP / gradient beside minideep / PyTorch for each.

    python benchmarks/second_order.py
"""

from __future__ import annotations

import numpy as np
from common import median_time, write_results

import minideep as md
from minideep import bench

REPEATS = {"mlp": 60, "cnn": 8, "lstm": 10}


def _closures(lib, name: str):
    rng = np.random.default_rng(0)
    model, x, y = bench._build(lib, lib.nn, name, bench.DEFAULT_BATCH[name], rng)
    params = list(model.parameters())
    cross_entropy = lib.nn.functional.cross_entropy
    v = [lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)) for p in params]

    def gradient():
        lib.autograd.grad(cross_entropy(model(x), y), params)

    def hvp():
        g = lib.autograd.grad(cross_entropy(model(x), y), params, create_graph=True)
        dot = sum((gi * vi).sum() for gi, vi in zip(g, v))
        lib.autograd.grad(dot, params)

    return gradient, hvp


def main() -> None:
    torch = bench._torch()
    rows = []
    for name in ("mlp", "cnn", "lstm"):
        md.manual_seed(0)
        ours = _closures(md, name)
        theirs = _closures(torch, name) if torch is not None else None
        reps = REPEATS[name]
        t = {}
        for _ in range(2):  # alternate the libraries, keep each one's best median
            for lib, fns in (("md", ours), ("torch", theirs)):
                if fns is None:
                    continue
                for kind, fn in zip(("grad", "hvp"), fns):
                    ms = 1e3 * median_time(fn, repeats=reps, warmup=2)
                    t[lib, kind] = min(ms, t.get((lib, kind), ms))
        row = {
            "model": name,
            "minideep grad ms": round(t["md", "grad"], 2),
            "minideep HVP ms": round(t["md", "hvp"], 2),
            "minideep HVP / grad": round(t["md", "hvp"] / t["md", "grad"], 2),
        }
        if theirs is not None:
            row.update(
                {
                    "PyTorch grad ms": round(t["torch", "grad"], 2),
                    "PyTorch HVP ms": round(t["torch", "hvp"], 2),
                    "PyTorch HVP / grad": round(t["torch", "hvp"] / t["torch", "grad"], 2),
                    "HVP minideep / PyTorch": round(t["md", "hvp"] / t["torch", "hvp"], 2),
                }
            )
        rows.append(row)
    write_results(
        "second_order",
        rows,
        "Hessian-vector product against a gradient (float32, CPU)",
        notes=(
            "A gradient runs each op's backward on arrays (with the CPU fast paths); an "
            "HVP first builds the gradient as a graph (each backward on Tensors, the "
            "reference formulas; the LSTM's through its unrolled recurrence), then "
            "differentiates it."
        ),
    )


if __name__ == "__main__":
    main()
