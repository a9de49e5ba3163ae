"""The four training steps of ``minideep bench``, minideep against PyTorch, interleaved.

    python benchmarks/steps_vs_torch.py [--rounds 10] [--workloads cnn,lstm,mlp,tiny]

``minideep bench`` times both libraries once, one after the other, in one process; on a
machine whose speed drifts (a shared virtual machine), one such run can be 20% off. Here
each round runs, for each workload, one fresh process per library in alternating order;
a process warms up, then reports the median of many timed steps. The table gives each
library's median over rounds and the median and quartiles of the per-round ratios
minideep / PyTorch (the two processes of a round ran back to back). Writes
``results/steps_vs_torch.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from common import write_results

CHILD = r"""
import json, sys, time, statistics
from minideep import bench
name, lib = sys.argv[1], sys.argv[2]
if lib == "torch":
    torch = bench._torch()
    torch.set_num_threads(int(sys.argv[3]))
    step = bench._torch_step(torch, name, bench.DEFAULT_BATCH[name], "cpu")
else:
    step = bench._minideep_step(name, bench.DEFAULT_BATCH[name], "cpu")
reps = {"tiny": 400, "mlp": 200, "lstm": 40, "cnn": 20}[name]
for _ in range(3):
    step()
times = []
for _ in range(reps):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(json.dumps(statistics.median(times)))
"""


def run(name: str, lib: str, threads: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, lib, str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--workloads", default="cnn,lstm,mlp,tiny")
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    rows = []
    for name in args.workloads.split(","):
        ours, theirs = [], []
        for r in range(args.rounds):
            pair = [("minideep", ours), ("torch", theirs)]
            for lib, times in pair if r % 2 == 0 else pair[::-1]:
                times.append(run(name, lib, threads))
        ratios = sorted(a / b for a, b in zip(ours, theirs))
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        rows.append(
            {
                "workload": name,
                "minideep ms": round(statistics.median(ours) * 1e3, 4),
                "PyTorch ms": round(statistics.median(theirs) * 1e3, 4),
                "minideep / PyTorch": round(statistics.median(ratios), 3),
                "quartiles": f"{q1:.3f}-{q3:.3f}",
            }
        )
        print(rows[-1], flush=True)
    write_results(
        "steps_vs_torch",
        rows,
        "Training steps, minideep / PyTorch CPU, interleaved processes",
        notes=f"{args.rounds} rounds; PyTorch with {threads} threads (as many as NumPy's "
        "BLAS uses). Median of many steps per process after warm-up.",
    )


if __name__ == "__main__":
    main()
