"""Whole small training scripts, minideep beside PyTorch: the same code, two libraries.

    python benchmarks/scripts.py [--rounds 3] [--steps 40]

Two scripts a learner writes in the lessons, each written once against ``lib`` (``minideep``
or ``torch``: both spell it the same) and run in a fresh process per library, the two
libraries alternating for ``--rounds`` rounds:

* ``conv autoencoder``: 64x64 RGB frames, two stride-2 convolutions down and two
  stride-2 transposed convolutions up, sigmoid output, MSE loss, Adam, batch 16;
* ``cnn + lstm``: clips of 8 frames at 32x32, a per-frame CNN (conv, ReLU, max pool,
  conv, ReLU, global average pool) into an LSTM and a linear classifier, cross-entropy,
  Adam, batch 8.

The time is the training loop (model built, ``steps`` steps with batches taken from a
NumPy array, each converted with ``lib.tensor``), after two warm-up steps; imports and
interpreter start-up are left out (PyTorch's import alone takes longer than several of
these loops). Writes ``results/scripts.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from common import write_results

CHILD = r"""
import json, sys, time
import numpy as np
name, lib_name, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
if lib_name == "torch":
    import torch as lib
    lib.set_num_threads(int(sys.argv[4]))
else:
    import minideep as lib
nn, F = lib.nn, lib.nn.functional
rng = np.random.default_rng(0)
lib.manual_seed(0)

if name == "conv autoencoder":
    data = rng.random((160, 3, 64, 64), dtype=np.float32)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1), nn.Sigmoid(),
    )
    batch = 16

    def loss_of(i):
        x = lib.tensor(data[i : i + batch])
        return F.mse_loss(model(x), x)
else:
    clips = rng.random((80, 8, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 5, 80)

    class CNNLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.cnn = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            self.lstm = nn.LSTM(32, 64, batch_first=True)
            self.head = nn.Linear(64, 5)

        def forward(self, x):  # (B, T, 3, H, W)
            b, t = x.shape[:2]
            features = self.cnn(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1)
            out, _ = self.lstm(features)
            return self.head(out[:, -1])

    model = CNNLSTM()
    batch = 8

    def loss_of(i):
        x = lib.tensor(clips[i : i + batch])
        y = lib.tensor(labels[i : i + batch])
        return F.cross_entropy(model(x), y)

opt = lib.optim.Adam(model.parameters(), lr=1e-3)
n = len(data) if name == "conv autoencoder" else len(clips)

def step(k):
    i = (k * batch) % (n - batch + 1)
    loss = loss_of(i)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss

for k in range(2):
    step(k)
start = time.perf_counter()
for k in range(steps):
    loss = step(k)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "loss": float(loss.item())}))
"""

SCRIPTS = ["conv autoencoder", "cnn + lstm"]


def run(name: str, lib: str, steps: int, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, lib, str(steps), str(threads)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    rows = []
    for name in SCRIPTS:
        times = {"minideep": [], "torch": []}
        losses = {}
        for r in range(args.rounds):
            order = ["minideep", "torch"] if r % 2 == 0 else ["torch", "minideep"]
            for lib in order:
                result = run(name, lib, args.steps, threads)
                times[lib].append(result["seconds"])
                losses[lib] = result["loss"]
        ours, theirs = statistics.median(times["minideep"]), statistics.median(times["torch"])
        rows.append(
            {
                "script": name,
                "steps": args.steps,
                "minideep s": round(ours, 3),
                "PyTorch s": round(theirs, 3),
                "minideep / PyTorch": round(ours / theirs, 2),
                "last loss (minideep, PyTorch)": f"{losses['minideep']:.4f}, {losses['torch']:.4f}",
            }
        )
        print(rows[-1])
    write_results(
        "scripts",
        rows,
        "Whole small training scripts, minideep beside PyTorch (CPU)",
        notes=f"Median over {args.rounds} rounds of a fresh process per library, the two "
        "alternating; the training loop only (imports and start-up left out). The losses "
        "differ because the libraries initialise the weights from different generators.",
    )


if __name__ == "__main__":
    main()
