"""Cost of one optimiser step.

Two parameter sets: the ten parameters of a small CNN (three 3x3 convolutions and two
linear layers, ~170k weights, float32), where the arithmetic dominates, and ten
one-element parameters, where only the per-parameter Python overhead is left. Compared
with PyTorch's optimisers (one thread) on the same shapes when it is installed.

    python benchmarks/optim.py
"""

from __future__ import annotations

import numpy as np
from common import median_time, write_results

import minideep as md

CNN_SHAPES = [
    (16, 3, 3, 3),
    (16,),
    (32, 16, 3, 3),
    (32,),
    (64, 32, 3, 3),
    (64,),
    (128, 64 * 4 * 4),
    (128,),
    (10, 128),
    (10,),
]
TINY_SHAPES = [(1,)] * 10
CONFIGS = [
    ("SGD", dict(lr=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9)),
    ("Adam", dict(lr=1e-3)),
    ("AdamW", dict(lr=1e-3)),
    ("RMSprop", dict(lr=1e-3)),
]


def _arrays(shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def minideep_step(name, kwargs, shapes):
    params = [md.nn.Parameter(md.tensor(a)) for a in _arrays(shapes)]
    for p, g in zip(params, _arrays(shapes)):
        p.grad = md.tensor(g * 1e-3)
    return getattr(md.optim, name)(params, **kwargs).step


def torch_step(torch, name, kwargs, shapes):
    params = [torch.tensor(a, requires_grad=True) for a in _arrays(shapes)]
    for p, g in zip(params, _arrays(shapes)):
        p.grad = torch.tensor(g * 1e-3)
    return getattr(torch.optim, name)(params, **kwargs).step


def main() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rows = []
    for name, kwargs in CONFIGS:
        label = name + "".join(f", {k}={v}" for k, v in kwargs.items() if k != "lr")
        row = {"optimizer": label}
        for set_name, shapes in (("cnn", CNN_SHAPES), ("10 scalars", TINY_SHAPES)):
            seconds = median_time(minideep_step(name, kwargs, shapes), repeats=200, warmup=5)
            row[f"minideep {set_name} (us)"] = seconds * 1e6
            if torch is not None:
                step = torch_step(torch, name, kwargs, shapes)
                row[f"pytorch {set_name} (us)"] = median_time(step, repeats=200, warmup=5) * 1e6
        rows.append(row)
    n_weights = sum(int(np.prod(s)) for s in CNN_SHAPES)
    write_results(
        "optim",
        rows,
        f"One optimizer.step(): small CNN ({n_weights} weights in 10 tensors) and "
        "10 one-element tensors",
        notes="State is updated in place; gradients are never modified.",
    )


if __name__ == "__main__":
    main()
