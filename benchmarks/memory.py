"""Peak memory of one cnn training step (batch 32), minideep beside PyTorch.

Each figure comes from a fresh process: the rise of its peak resident set size across
the first training step, and across the third (after two warm-up steps), when memory
kept between steps is already resident.

    python benchmarks/memory.py
"""

from common import write_results

from minideep import bench


def main() -> None:
    rows = bench.memory_rows("cnn", 32)
    write_results("memory", rows, "Peak RSS growth of a cnn training step (batch 32, CPU)")


if __name__ == "__main__":
    main()
