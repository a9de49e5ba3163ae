"""A/B: the four training steps of ``minideep bench`` in two source trees, interleaved.

    python benchmarks/ab_steps.py OLD_TREE NEW_TREE [--rounds 5] [--fast-paths 0|1]

Each round runs, for each workload, one fresh process per tree in alternating order, so
slow drifts of the machine hit both trees alike; a process warms up, then reports the
median of many timed steps. Prints the median over rounds of each tree's step time, the
median of the per-round ratios new / old (the two processes of a round ran back to back,
so their ratio is the least disturbed by drift) and the quartiles of those ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

# the timing child of steps_vs_torch.py: a fresh process warms up one step, then prints
# the median of many (its minideep side only here)
from steps_vs_torch import CHILD


def run(tree: str, name: str, fast: str | None) -> float:
    env = dict(os.environ, PYTHONPATH=tree)
    if fast is not None:
        env["MINIDEEP_FAST_PATHS"] = fast
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, "minideep", "1"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fast-paths", default=None, help="MINIDEEP_FAST_PATHS for NEW")
    parser.add_argument("--workloads", default="cnn,lstm,mlp,tiny")
    args = parser.parse_args()
    from minideep.bench import machine_info

    print(json.dumps(machine_info()))
    print(f"{'workload':8} {'old ms':>9} {'new ms':>9} {'new/old':>8} {'quartiles':>13}")
    for name in args.workloads.split(","):
        old, new = [], []
        for r in range(args.rounds):
            pair = [(args.old, old, None), (args.new, new, args.fast_paths)]
            for tree, times, fast in pair if r % 2 == 0 else pair[::-1]:
                times.append(run(tree, name, fast))
        o, n = statistics.median(old) * 1e3, statistics.median(new) * 1e3
        ratios = [b / a for a, b in zip(old, new)]
        q1, med, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        med = statistics.median(ratios)
        print(f"{name:8} {o:9.3f} {n:9.3f} {med:8.3f} {q1:6.3f}-{q3:.3f}")


if __name__ == "__main__":
    main()
