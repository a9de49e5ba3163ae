"""Shared by the benchmarks: timing, the machine description, writing results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        libs = [
            f"{i['internal_api']} {i.get('version', '')} ({i['num_threads']} threads)"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
        if libs:
            return ", ".join(libs)
    except ImportError:
        pass
    config = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    blas = config.get("Build Dependencies", {}).get("blas", {}) if isinstance(config, dict) else {}
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


def machine_info() -> dict:
    """What the numbers were measured on."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import minideep as md

        if md.cuda.is_available():
            import cupy

            info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
            info["cupy"] = cupy.__version__
    except Exception:
        pass
    return info


def median_time(fn, repeats: int = 20, warmup: int = 3, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` calls (host clock: CPU only)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def markdown_table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def write_results(name: str, rows: list[dict], title: str, notes: str = "") -> None:
    """Print the table and write ``results/<name>.json`` and ``results/<name>.md``."""
    machine = machine_info()
    table = markdown_table(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    payload = {"benchmark": name, "date": stamp, "machine": machine, "rows": rows}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    machine_lines = "\n".join(f"- {k}: {v}" for k, v in machine.items())
    text = f"# {title}\n\nMeasured {stamp} on:\n{machine_lines}\n\n{table}\n"
    if notes:
        text += f"\n{notes}\n"
    (RESULTS / f"{name}.md").write_text(text)
