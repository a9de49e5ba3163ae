"""Where the cnn training step's time goes, layer by layer, minideep beside PyTorch.

    python benchmarks/cnn_breakdown.py [--repeats 20]

The cnn step of ``minideep bench`` (batch 32 of 3x64x64: conv 3->16, ReLU, 2x2 max pool,
conv 16->32, ReLU, 2x2 max pool, linear 8192->64, ReLU, linear 64->10, cross-entropy)
cut into its layers, each timed forward+backward on its own input in both libraries
(PyTorch's weights copied from minideep's), alternating, best median of three. Beside
them, the floor of a memory-bound layer: one copy of its input, ``np.copyto`` (one
thread) against ``torch.Tensor.copy_`` (PyTorch's threads). Writes
``results/cnn_breakdown.md`` and ``.json``.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import median_time, write_results

import minideep as md
from minideep.bench import _torch


def _cases(lib):
    nn = lib.nn
    return [
        (
            "conv 3->16 k3 p1 (input wants no grad)",
            nn.Conv2d(3, 16, 3, padding=1),
            (32, 3, 64, 64),
            False,
        ),
        ("ReLU", nn.ReLU(), (32, 16, 64, 64), True),
        ("max pool 2", nn.MaxPool2d(2), (32, 16, 64, 64), True),
        ("conv 16->32 k3 p1", nn.Conv2d(16, 32, 3, padding=1), (32, 16, 32, 32), True),
        ("ReLU", nn.ReLU(), (32, 32, 32, 32), True),
        ("max pool 2", nn.MaxPool2d(2), (32, 32, 32, 32), True),
        ("linear 8192->64", nn.Linear(8192, 64), (32, 8192), True),
    ]


def _time_layer(torch, ours, theirs, x, grad: bool, repeats: int) -> dict:
    """Best median seconds of: minideep's layer, PyTorch's, and one copy of x in each."""
    state = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)
    x = x.astype(np.float32)
    xm, xt = md.tensor(x, requires_grad=grad), torch.tensor(x, requires_grad=grad)
    up = np.random.default_rng(1).standard_normal(tuple(ours(xm).shape)).astype(np.float32)
    upt = torch.tensor(up)

    def run_ours():
        xm.grad = None
        ours(xm).backward(up)

    def run_theirs():
        xt.grad = None
        theirs(xt).backward(upt)

    copy_np, copy_t, source_t = np.empty_like(x), torch.empty(x.shape), xt.detach()
    timers = {
        "ours": run_ours,
        "theirs": run_theirs,
        "np": lambda: np.copyto(copy_np, x),
        "torch": lambda: copy_t.copy_(source_t),
    }
    best = {}
    for _ in range(3):
        for key, fn in timers.items():
            t = median_time(fn, repeats=repeats, warmup=2)
            best[key] = min(best.get(key, t), t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch = _torch()
    rng = np.random.default_rng(0)
    md.manual_seed(0)
    rows = []
    total_ours = total_theirs = 0.0
    for (name, ours, shape, grad), (_, theirs, _, _) in zip(_cases(md), _cases(torch)):
        best = _time_layer(torch, ours, theirs, rng.standard_normal(shape), grad, args.repeats)
        total_ours += best["ours"]
        total_theirs += best["theirs"]
        rows.append(
            {
                "layer": name,
                "input": "x".join(map(str, shape)),
                "minideep ms": round(best["ours"] * 1e3, 3),
                "PyTorch ms": round(best["theirs"] * 1e3, 3),
                "minideep / PyTorch": round(best["ours"] / best["theirs"], 2),
                "one copy: NumPy ms": round(best["np"] * 1e3, 3),
                "one copy: PyTorch ms": round(best["torch"] * 1e3, 3),
            }
        )
        print(rows[-1], flush=True)
    rows.append(
        {
            "layer": "sum of the layers",
            "minideep ms": round(total_ours * 1e3, 2),
            "PyTorch ms": round(total_theirs * 1e3, 2),
            "minideep / PyTorch": round(total_ours / total_theirs, 2),
        }
    )
    write_results(
        "cnn_breakdown",
        rows,
        "The cnn training step, layer by layer (forward+backward, float32, CPU)",
        notes="Best of three medians, the libraries alternating. The copy columns are the "
        "floor of one pass over the layer's input: NumPy runs it on one thread, PyTorch on "
        "its intra-op threads.",
    )


if __name__ == "__main__":
    main()
