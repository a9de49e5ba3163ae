"""Forward + backward of every layer type the lessons use, beside PyTorch CPU.

    python benchmarks/layers.py [--repeats 10] [--rounds 5] [--filter TEXT]

Writes ``results/layers.md`` and ``.json`` with the machine it ran on. The cases are in
``minideep/bench_layers.py`` (``minideep bench --what layers`` runs the same).
"""

from __future__ import annotations

import argparse

from common import write_results

from minideep.bench_layers import layer_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    rows = layer_rows(repeats=args.repeats, filter=args.filter, rounds=args.rounds)
    write_results(
        "layers",
        rows,
        "Layers, forward + backward (float32, CPU), minideep beside PyTorch",
        notes=f"Best of {args.rounds} medians of the timed repeats (five times as many repeats "
        "for cases under 2 ms), minideep and PyTorch alternating; "
        "PyTorch with the same number of threads as NumPy's BLAS; PyTorch's weights copied "
        "from minideep's.",
    )


if __name__ == "__main__":
    main()
