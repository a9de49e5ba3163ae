"""Kernel and training-step benchmarks: minideep on NumPy and CuPy, beside PyTorch.

``minideep bench`` (``cli.py``) and the scripts in ``benchmarks/`` call
:func:`workload_rows`, :func:`kernel_rows` and :func:`memory_rows`. Every
figure is the median of several timed repeats after warm-up calls. CPU work is timed with
the host clock; GPU work with CUDA events recorded on the stream around the work (a host
clock around an asynchronous launch would time the launch, not the kernel).

Reference workloads (float32), each a full training step (forward, loss, backward, SGD):

* ``cnn``  - batch (32, 3, 64, 64): Conv2d 3->16 k3 p1, ReLU, MaxPool 2, Conv2d 16->32 k3 p1,
  ReLU, MaxPool 2, Flatten, Linear 8192->64, ReLU, Linear 64->10, cross-entropy;
* ``lstm`` - batch 32, 16 steps, input 256, hidden 128, batch_first, Linear 128->10 on the
  last step, cross-entropy;
* ``mlp``  - batch 64, 784 -> 128 ReLU -> 10, cross-entropy;
* ``tiny`` - ``(a * b + a).sum()`` forward and backward on 8 elements (pure overhead).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------- timing


def time_cpu(fn: Callable, repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` on the host clock."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_cupy(fn: Callable, repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` on the GPU, between CUDA events on the current stream."""
    import cupy

    for _ in range(warmup):
        fn()
    cupy.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeats):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / 1e3)
    return statistics.median(times)


def time_torch_cuda(torch, fn: Callable, repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` between ``torch.cuda.Event``s."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def time_on(device: str, fn: Callable, repeats: int = 10, warmup: int = 2, torch=None) -> float:
    """Median seconds of ``fn()`` on ``device``: :func:`time_cpu` on the CPU; on the GPU
    :func:`time_torch_cuda` when ``fn`` is PyTorch's (``torch`` given), else :func:`time_cupy`."""
    if device == "cpu":
        return time_cpu(fn, repeats, warmup)
    if torch is not None:
        return time_torch_cuda(torch, fn, repeats, warmup)
    return time_cupy(fn, repeats, warmup)


# ---------------------------------------------------------------------------- machine


def machine_info() -> dict:
    """CPU model, cores, BLAS, library versions and the GPU, if any."""
    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}
    info["numpy"] = np.__version__
    info["blas"] = _blas()
    core = _blas_core()
    if core:
        info["blas_kernel"] = core
    flags = _cpu_flags()
    if flags:
        info["cpu_flags"] = flags
    if os.environ.get("OPENBLAS_CORETYPE"):
        info["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    torch = _torch()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    from . import cuda

    if cuda.is_available():
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode()
        info["cupy"] = cupy.__version__
    return info


def _cpu_flags() -> str:
    """The vector extensions the CPU reports (Linux): what NumPy's and BLAS's kernels use."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                wanted = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile")
                return " ".join(f for f in wanted if f in have)
    except OSError:
        pass
    return ""


def _blas_core() -> str:
    """The kernel set OpenBLAS picked for this CPU (e.g. ``SkylakeX``, ``Zen``), if NumPy
    uses the OpenBLAS it ships with; else an empty string."""
    import ctypes
    import glob

    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in glob.glob(str(libs / "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename"):
            get = getattr(lib, name, None)
            if get is not None:
                get.restype = ctypes.c_char_p
                return get().decode()
    return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        return "unknown"


def _torch():
    """PyTorch if installed, set to the thread count of NumPy's BLAS (a fair comparison)."""
    try:
        import torch
    except ImportError:
        return None
    threads = blas_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch


def blas_threads() -> int:
    """Threads NumPy's BLAS uses: what PyTorch is given too, for a fair comparison."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                return int(lib["num_threads"])
    except ImportError:
        pass
    return os.cpu_count() or 1


# ---------------------------------------------------------------------------- workloads

WORKLOADS = ("cnn", "lstm", "mlp", "tiny")


def _minideep_step(name: str, batch: int, device: str):
    """A closure running one training step of workload ``name`` in minideep."""
    import minideep as md
    from minideep import nn
    from minideep.nn import functional as F

    md.manual_seed(0)
    rng = np.random.default_rng(0)
    if name == "tiny":
        return _tiny_step(md, device)
    model, x, y = _build(md, nn, name, batch, rng)
    model.to(device)
    x, y = x.to(device), y.to(device)
    params = list(model.parameters())

    def step():
        loss = F.cross_entropy(model(x), y)
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= 0.01 * p.grad.data

    return step


def _tiny_step(lib, device: str):
    """``(a * b + a).sum()`` forward and backward on 8 float32 elements, in ``lib``
    (minideep or torch: both spell it the same)."""
    rng = np.random.default_rng(0)
    a, b = (
        lib.tensor(rng.standard_normal(8).astype(np.float32), device=device, requires_grad=True)
        for _ in range(2)
    )

    def tiny():
        (a * b + a).sum().backward()
        a.grad = b.grad = None

    return tiny


def _build(lib, nn, name: str, batch: int, rng):
    """The same model and data in minideep (``lib=md``) or PyTorch (``lib=torch``)."""

    def tensor(a):
        return lib.tensor(a)

    if name == "cnn":
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(8192, 64), nn.ReLU(), nn.Linear(64, 10),
        )  # fmt: skip
        x = rng.standard_normal((batch, 3, 64, 64)).astype(np.float32)
    elif name == "lstm":
        model = _LSTMClassifier(lib, nn)
        x = rng.standard_normal((batch, 16, 256)).astype(np.float32)
    elif name == "mlp":
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        x = rng.standard_normal((batch, 784)).astype(np.float32)
    else:
        raise ValueError(f"unknown workload {name!r}; expected one of {WORKLOADS}")
    y = rng.integers(0, 10, batch)
    return model, tensor(x), tensor(y)


def _LSTMClassifier(lib, nn):
    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(256, 128, batch_first=True)
            self.head = nn.Linear(128, 10)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    return LSTMClassifier()


def _torch_step(torch, name: str, batch: int, device: str):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if name == "tiny":
        return _tiny_step(torch, device)
    model, x, y = _build(torch, torch.nn, name, batch, rng)
    model.to(device)
    x, y = x.to(device), y.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.functional.cross_entropy

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return step


DEFAULT_BATCH = {"cnn": 32, "lstm": 32, "mlp": 64, "tiny": 8}


def workload_rows(
    device: str = "cpu", batch: dict | None = None, repeats: int = 10, quick: bool = False
) -> list[dict]:
    """Time each workload in minideep and (when installed) PyTorch on ``device``.

    ``quick``: batches of 2 and one timed call each (a smoke test, not a measurement).
    """
    torch = _torch()
    batch = {**DEFAULT_BATCH, **(batch or {})}
    if quick:
        batch = {name: 2 for name in batch}
        repeats = 1
    rows = []
    for name in WORKLOADS:
        n = batch[name]
        # sub-millisecond steps get more repeats: a median of 10 swings by 20% here
        reps = repeats * {"tiny": 20, "mlp": 10}.get(name, 1)
        warm = 0 if quick else 2
        ours = _minideep_step(name, n, device)
        t_ours = time_on(device, ours, reps, warm)
        row = {"workload": name, "batch": n, "device": device, "minideep ms": t_ours * 1e3}
        if torch is not None and (device == "cpu" or torch.cuda.is_available()):
            theirs = _torch_step(torch, name, n, device)
            t_theirs = time_on(device, theirs, reps, warm, torch=torch)
            row["pytorch ms"] = t_theirs * 1e3
            row["minideep / pytorch"] = t_ours / t_theirs
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- kernels


def _kernel_specs(quick: bool) -> list[tuple]:
    """``(kernel, size text, FLOPs, input shapes, fn(F, *inputs), backward?)`` per row.

    ``fn`` takes the functional module of a library (``md.nn.functional`` or
    ``torch.nn.functional``), so one spec serves both libraries.
    """
    b = 2 if quick else None  # batch override for a smoke test
    specs = []
    for n in (64,) if quick else (128, 512, 1024):
        specs.append(("matmul", f"{n}x{n}x{n}", 2 * n**3, [(n, n), (n, n)],
                      lambda F, x, y: x @ y, False))  # fmt: skip
    for batch, cin, cout, hw in ((b or 32, 3, 16, 64), (b or 32, 16, 32, 64)):
        flops = 2 * batch * cout * hw * hw * cin * 9
        shapes = [(batch, cin, hw, hw), (cout, cin, 3, 3)]
        size = f"{batch}x{cin}x{hw}x{hw} -> {cout}, k3 p1"
        conv = lambda F, x, w: F.conv2d(x, w, padding=1)  # noqa: E731
        specs.append(("conv2d fwd", size, flops, shapes, conv, False))
        specs.append(("conv2d fwd+bwd", size, 3 * flops, shapes, conv, True))
    n = b or 8
    flops = 3 * 2 * n * 16 * (16 * 32 * 32) * 8 * 27
    specs.append(("conv3d fwd+bwd", f"{n}x8x16x32x32 -> 16, k3 p1", flops,
                  [(n, 8, 16, 32, 32), (16, 8, 3, 3, 3)],
                  lambda F, x, w: F.conv3d(x, w, padding=1), True))  # fmt: skip
    n = b or 32
    pool = lambda F, x: F.max_pool2d(x, 2)  # noqa: E731
    specs.append(("max_pool2d fwd", f"{n}x32x64x64, k2", 0, [(n, 32, 64, 64)], pool, False))
    specs.append(("max_pool2d fwd+bwd", f"{n}x32x64x64, k2", 0, [(n, 32, 64, 64)], pool, True))
    return specs


def kernel_rows(device: str = "cpu", repeats: int = 10, quick: bool = False) -> list[dict]:
    """Single kernels, forward and forward+backward, with achieved GFLOP/s.

    ``quick`` shrinks every batch to 2 and times one call: a smoke test, not a measurement.
    """
    import minideep as md
    from minideep import nn

    torch = _torch()
    torch_device = (
        device if torch is not None and (device == "cpu" or torch.cuda.is_available()) else None
    )
    reps, warmup = (1, 0) if quick else (repeats, 2)
    rng = np.random.default_rng(0)
    rows = []

    def measure(lib, fn, arrays, backward):
        is_md = lib is md
        dev = device if is_md else torch_device
        inputs = [lib.tensor(a, device=dev, requires_grad=backward) for a in arrays]
        functional = nn.functional if is_md else torch.nn.functional
        if backward:
            step = lambda: _fwd_bwd(fn(functional, *inputs), *inputs)  # noqa: E731
        else:
            step = lambda: _no_grad(lib, fn, functional, *inputs)  # noqa: E731
        return time_on(dev, step, reps, warmup, torch=None if is_md else torch)

    for kernel, size, flops, shapes, fn, backward in _kernel_specs(quick):
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        t = measure(md, fn, arrays, backward)
        row = {"kernel": kernel, "size": size, "device": device, "minideep ms": t * 1e3}
        row["minideep GFLOP/s"] = flops / t / 1e9 if flops else float("nan")
        if torch_device is not None:
            tt = measure(torch, fn, arrays, backward)
            row["pytorch ms"] = tt * 1e3
            row["minideep / pytorch"] = t / tt
        rows.append(row)

    # The LSTM layer: a module rather than a function, so it is timed on its own.
    n = 2 if quick else 32
    x_np = rng.standard_normal((n, 16, 256)).astype(np.float32)
    md.manual_seed(0)
    lstm = nn.LSTM(256, 128, batch_first=True).to(device)
    x = md.tensor(x_np, device=device, requires_grad=True)
    step = lambda: _fwd_bwd(lstm(x)[0], x)  # noqa: E731
    t = time_on(device, step, reps, warmup)
    flops = 3 * 2 * n * 16 * 4 * 128 * (256 + 128)
    row = {"kernel": "lstm fwd+bwd", "size": f"batch {n}, 16 steps, 256 -> 128", "device": device}
    row.update({"minideep ms": t * 1e3, "minideep GFLOP/s": flops / t / 1e9})
    if torch_device is not None:
        tl = torch.nn.LSTM(256, 128, batch_first=True).to(torch_device)
        tx = torch.tensor(x_np, device=torch_device, requires_grad=True)
        tstep = lambda: _fwd_bwd(tl(tx)[0], tx)  # noqa: E731
        tt = time_on(torch_device, tstep, reps, warmup, torch=torch)
        row["pytorch ms"] = tt * 1e3
        row["minideep / pytorch"] = t / tt
    rows.append(row)
    return rows


def _no_grad(lib, fn, *args):
    with lib.no_grad():
        return fn(*args)


def _fwd_bwd(out, *inputs):
    out.sum().backward()
    for t in inputs:
        t.grad = None


# ---------------------------------------------------------------------------- reporting


def format_table(rows: list[dict]) -> str:
    """A Markdown table of ``rows`` (the union of their keys as columns)."""
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def save_results(name: str, sections: dict[str, list[dict]], out_dir, notes: str = "") -> Path:
    """Write ``<name>.json`` and ``<name>.md`` (tables and machine) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    payload = {"date": stamp, "machine": machine, **sections}
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    text = [f"# {name}", "", f"Measured {stamp} on:", ""]
    text += [f"- {k}: {v}" for k, v in machine.items()]
    for title, rows in sections.items():
        text += ["", f"## {title}", "", format_table(rows)]
    if notes:
        text += ["", notes]
    (out_dir / f"{name}.md").write_text("\n".join(text) + "\n")
    return out_dir / f"{name}.md"


# ---------------------------------------------------------------------------- memory


def rss_growth_mb(library: str, workload: str = "cnn", batch: int = 32, warmup: int = 0) -> float:
    """Peak resident memory added by one training step, in MB, measured in a fresh process.

    The model and batch are built first and ``warmup`` steps run; the figure is the
    process's peak RSS during the next step minus its RSS just before it: activations,
    saved tensors, gradients and temporaries. (Linux: the peak is reset through
    ``/proc/self/clear_refs`` and read as ``VmHWM``.) ``library`` is ``"minideep"`` or
    ``"pytorch"``. With ``warmup=0`` that is the first step; after a few steps, memory an
    allocator keeps between steps (minideep's CPU memory pool) is already resident.
    """
    import subprocess
    import sys

    code = (
        "import minideep.bench as b; "
        f"step = b._rss_step({library!r}, {workload!r}, {batch}); "
        f"[step() for _ in range({warmup})]; "
        "before = b._reset_peak_rss(); step(); print(b._peak_rss_kib() - before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> int:
    """Make the peak RSS equal the current RSS; return the current RSS in KiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS")


def _peak_rss_kib() -> int:
    return _status_kib("VmHWM")


def _rss_step(library: str, workload: str, batch: int):
    if library == "minideep":
        return _minideep_step(workload, batch, "cpu")
    return _torch_step(_torch(), workload, batch, "cpu")


def memory_rows(workload: str = "cnn", batch: int = 32) -> list[dict]:
    """Peak RSS growth of the first and the third training step, minideep beside PyTorch
    (when installed)."""
    libraries = ["minideep"] + (["pytorch"] if _torch() is not None else [])
    return [
        {
            "workload": workload,
            "batch": batch,
            "library": lib,
            "first step: peak RSS growth MB": rss_growth_mb(lib, workload, batch),
            "third step: peak RSS growth MB": rss_growth_mb(lib, workload, batch, warmup=2),
        }  # fmt: skip
        for lib in libraries
    ]
