"""Shared by the benchmark scripts: timing and writing results with the machine.

The measurement code itself lives in :mod:`minideep.bench` (``minideep bench`` uses it
too); this module only fixes where the scripts write: ``benchmarks/results/``.
"""

from __future__ import annotations

from pathlib import Path

from minideep.bench import format_table, save_results, time_cpu

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds after ``warmup`` calls (CPU work only)."""
    return time_cpu(fn, repeats=repeats, warmup=warmup)


def write_results(name: str, rows: list[dict], title: str, notes: str = "") -> None:
    """Print the table and write ``results/<name>.json`` and ``results/<name>.md``."""
    print(format_table(rows))
    save_results(name, {title: rows}, RESULTS, notes=notes)
