"""CPU vs GPU: kernels and training steps on NumPy and CuPy, beside PyTorch CPU and CUDA.

Needs a machine with an NVIDIA GPU and CuPy. Runs the kernel table and the reference
workloads on both devices, then the large-batch workloads of the GPU comparison (cnn and
lstm at batch 256), and writes ``results/<name>.json`` and ``.md`` with the machine.

    python benchmarks/gpu.py --name gpu_h100
"""

from __future__ import annotations

import argparse

from common import RESULTS

import minideep as md
from minideep import bench


def large_batch_rows(repeats: int) -> list[dict]:
    """cnn and lstm at batch 256: minideep GPU vs PyTorch CUDA, and GPU vs CPU."""
    rows = []
    for device in ("cuda", "cpu"):
        for row in bench.workload_rows(device, batch={"cnn": 256, "lstm": 256}, repeats=repeats):
            if row["workload"] in ("cnn", "lstm"):
                rows.append(row)
    cpu = {r["workload"]: r["minideep ms"] for r in rows if r["device"] == "cpu"}
    for r in rows:
        if r["device"] == "cuda":
            r["minideep cpu / gpu"] = cpu[r["workload"]] / r["minideep ms"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="gpu", help="results file name")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if not md.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs CUDA and CuPy")
    sections = {}
    for device in ("cuda", "cpu"):
        sections[f"kernels ({device})"] = bench.kernel_rows(device, repeats=args.repeats)
        sections[f"training steps ({device})"] = bench.workload_rows(device, repeats=args.repeats)
    sections["batch 256: GPU vs PyTorch CUDA and vs minideep CPU"] = large_batch_rows(
        max(3, args.repeats // 2)
    )
    for title, rows in sections.items():
        print(f"\n## {title}\n\n{bench.format_table(rows)}")
    path = bench.save_results(
        args.name,
        sections,
        RESULTS,
        notes="GPU times are medians between CUDA events; CPU times medians on the host clock. "
        "PyTorch runs with the same thread count as NumPy's BLAS.",
    )
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
