"""LSTM training step: minideep against PyTorch's CPU ``nn.LSTM``.

One step = forward of a batch-first LSTM over a batch of sequences, a loss on all the
outputs, backward, and a plain SGD update ``p <- p - lr * grad``. Batch 32, 16 steps,
input 256, hidden 128, float32, PyTorch limited to the same number of threads as the
BLAS that NumPy uses. Also times the forward alone, a GRU step, and a longer sequence.

    python benchmarks/recurrent.py
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
from common import write_results

import minideep as md
from minideep.bench import blas_threads

LR = 0.01
CASES = [  # (layer, batch, steps, input, hidden)
    ("LSTM", 32, 16, 256, 128),
    ("LSTM", 32, 100, 64, 128),
    ("GRU", 32, 16, 256, 128),
]


def _data(batch, steps, input_size, hidden):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, steps, input_size)).astype(np.float32)
    target = rng.standard_normal((batch, steps, hidden)).astype(np.float32)
    return x, target


def minideep_step(layer, batch, steps, input_size, hidden, forward_only=False):
    md.manual_seed(0)
    model = getattr(md.nn, layer)(input_size, hidden, batch_first=True)
    x, target = (md.tensor(a) for a in _data(batch, steps, input_size, hidden))

    def step():
        if forward_only:
            with md.no_grad():
                model(x)
            return
        out, _ = model(x)
        loss = ((out - target) ** 2).mean()
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= LR * p.grad.data

    return step


def torch_step(torch, layer, batch, steps, input_size, hidden, forward_only=False):
    torch.manual_seed(0)
    model = getattr(torch.nn, layer)(input_size, hidden, batch_first=True)
    x, target = (torch.from_numpy(a) for a in _data(batch, steps, input_size, hidden))

    def step():
        if forward_only:
            with torch.no_grad():
                model(x)
            return
        out, _ = model(x)
        loss = ((out - target) ** 2).mean()
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= LR * p.grad

    return step


def interleaved_medians(fns: dict, repeats: int = 40, warmup: int = 5) -> dict:
    """Median seconds of each function, timed in turn (A, B, A, B, ...) so that a busy
    machine slows all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    try:
        import torch

        torch.set_num_threads(blas_threads())
    except ImportError:
        torch = None

    load_before = os.getloadavg()[0]
    rows = []
    for i, (layer, batch, steps, input_size, hidden) in enumerate(CASES):
        for forward_only in [False, True] if i == 0 else [False]:
            args = (layer, batch, steps, input_size, hidden)
            what = "forward (no_grad)" if forward_only else "train step"
            fns = {"minideep": minideep_step(*args, forward_only)}
            if torch is not None:
                fns["torch"] = torch_step(torch, *args, forward_only)
            times = interleaved_medians(fns)
            row = {
                "layer": layer,
                "N x T x I -> H": f"{batch} x {steps} x {input_size} -> {hidden}",
                "measure": what,
                "minideep ms": times["minideep"] * 1e3,
            }
            if torch is not None:
                row["torch ms"] = times["torch"] * 1e3
                row["minideep / torch"] = times["minideep"] / times["torch"]
            rows.append(row)

    write_results(
        "recurrent",
        rows,
        "Recurrent layers: minideep vs PyTorch (CPU)",
        notes=(
            "Train step = forward of a batch-first layer, MSE loss on all outputs, backward, "
            "SGD update; float32, median of 40 after 5 warm-up steps, minideep and PyTorch "
            "timed alternately. PyTorch uses "
            "torch.set_num_threads(BLAS threads). Target for the first row: within 1.5x of "
            "PyTorch. Load average (1 min) before / after the run: "
            f"{load_before:.2f} / {os.getloadavg()[0]:.2f}; a load well above the core "
            "count means other processes shared the CPU and inflated every time, though "
            "the alternate timing keeps the ratios comparable."
        ),
    )


if __name__ == "__main__":
    main()
