"""Processes that train together: ranks, all-reduce and broadcast over MPI (NCCL on GPUs).

``mpiexec -n N python train.py`` starts N copies of one script. Each copy is a *process*
with a *rank* (0 .. N-1) in a *world* of N. They share nothing but messages, and the
messages that data-parallel training needs are two *collectives*, operations every
process calls together:

* ``all_reduce(t, op)``: every process ends with the same ``op`` of all the ``t``'s
  (``"sum"``, ``"avg"``, ``"max"``, ``"min"``, ``"product"``), written into ``t``;
* ``broadcast(t, src)``: every process ends with process ``src``'s ``t``.

As in ``torch.distributed``, both work in place on the tensor's array, and
``async_op=True`` returns a :class:`Work` whose ``wait()`` finishes the operation.

The messages go over MPI through mpi4py (``backend="mpi"``, NumPy arrays; CuPy arrays
are copied through the host), or, for CuPy arrays on GPUs, through NVIDIA's NCCL
(``backend="nccl"``, one GPU per process; MPI still starts the processes and hands out
NCCL's rendezvous id). Nothing here imports mpi4py or CuPy until
:func:`init_process_group` is called, so ``import minideep`` never needs them.

**Timeouts.** A collective waits for every process. If one of them has hung, or took a
different path through the code and never calls it, the others would wait forever. So
every collective here is started non-blocking (``Iallreduce``, ``Ibcast``,
``Ibarrier``) and polled against a deadline, ``timeout`` of :func:`init_process_group`
(10 minutes by default, as in PyTorch); past it a ``RuntimeError`` names the operation
and the timeout, and when the process then exits it aborts the whole job
(``MPI_Abort``) instead of waiting for the missing peer in ``MPI_Finalize``. (A process
that *dies* is noticed by ``mpiexec`` itself, which ends the job at once.)

Launching: ``mpiexec -n 2 python train.py`` (as root add ``--allow-run-as-root``; with
more processes than cores add ``--oversubscribe``). ``python train.py`` alone is a world
of one process, rank 0, which works, as a single process does in PyTorch.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import time
from datetime import timedelta

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = [
    "ReduceOp",
    "Work",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
]

DEFAULT_TIMEOUT = timedelta(minutes=10)  # PyTorch's default for its process groups

INSTALL_HINT = 'pip install "minideep[distributed]" (mpi4py and Open MPI, with mpiexec)'


class ReduceOp:
    """The reductions of :func:`all_reduce` (plain strings work too: ``op="sum"``)."""

    SUM = "sum"
    AVG = "avg"  # the sum divided by the number of processes
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


_OPS = {"sum": "sum", "avg": "avg", "mean": "avg", "product": "product", "min": "min", "max": "max"}


class _Group:
    """The default process group: who we are, and the communicators to the others."""

    def __init__(self, backend_name, comm, timeout_s, nccl_comm=None):
        self.backend = backend_name
        self.comm = comm  # an mpi4py communicator of our own (a Dup of COMM_WORLD)
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout_s = timeout_s
        self.nccl = nccl_comm
        self.broken = None  # the error of a collective that timed out


_group: _Group | None = None


# ------------------------------------------------------------------------ set-up


def is_available() -> bool:
    """Whether mpi4py can be imported (the MPI backend's requirement)."""
    try:
        return importlib.util.find_spec("mpi4py") is not None
    except ValueError:  # sys.modules["mpi4py"] is None: imports of it are blocked
        return False


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            f"md.distributed needs mpi4py and an MPI library; install them with {INSTALL_HINT}"
        ) from error
    return MPI


def _launcher_world_size() -> int | None:
    """The number of processes the launcher says it started (None: not under one)."""
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return None


def _seconds(timeout) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if seconds <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return seconds


def init_process_group(
    backend: str = "mpi", timeout: timedelta | float | None = None, **kwargs
) -> None:
    """Join the processes started by ``mpiexec`` into the default process group.

    Args:
        backend: ``"mpi"`` (mpi4py; NumPy arrays, CuPy arrays through the host) or
            ``"nccl"`` (CuPy arrays on GPUs, one GPU per process: process ``r`` uses GPU
            ``local rank % GPUs on its machine``).
        timeout: how long a collective may wait for the other processes before it
            raises (a ``datetime.timedelta`` or seconds; default 10 minutes).

    ``init_method``, ``world_size`` and ``rank`` of PyTorch's signature are accepted when
    they agree with MPI's (MPI, not an address, tells the processes about each other).
    """
    global _group
    if _group is not None:
        raise ValueError("trying to initialize the default process group twice!")
    name = str(backend).lower()
    if name not in ("mpi", "nccl"):
        raise ValueError(f"unknown backend {backend!r}: minideep has 'mpi' and 'nccl'")
    timeout_s = _seconds(timeout)
    mpi = _import_mpi()
    comm = mpi.COMM_WORLD.Dup()  # our own channel: the user's MPI messages never mix with ours
    launched = _launcher_world_size()
    if launched is not None and launched > 1 and comm.Get_size() == 1:
        raise RuntimeError(
            f"the launcher started {launched} processes but MPI sees a world of 1: mpiexec "
            f"belongs to another MPI than the one mpi4py was built with. Use the mpiexec "
            f"installed with mpi4py ({INSTALL_HINT} puts it beside python)."
        )
    for key, value in (("world_size", comm.Get_size()), ("rank", comm.Get_rank())):
        given = kwargs.pop(key, -1)
        if given not in (-1, None, value):
            raise ValueError(f"init_process_group: {key}={given}, but MPI says {value}")
    kwargs.pop("init_method", None)
    if kwargs:
        raise TypeError(f"init_process_group: unexpected arguments {sorted(kwargs)}")
    nccl_comm = _nccl_communicator(comm) if name == "nccl" else None
    _group = _Group(name, comm, timeout_s, nccl_comm)


def _nccl_communicator(comm):
    """Pick this process's GPU and build an NCCL communicator; rank 0's id goes over MPI."""
    import cupy
    from cupy.cuda import nccl

    from . import cuda

    if not cuda.is_available():
        raise RuntimeError("backend 'nccl' needs CUDA and CuPy; use backend='mpi' on CPUs")
    mpi = _import_mpi()
    local_rank = comm.Split_type(mpi.COMM_TYPE_SHARED).Get_rank()  # rank on this machine
    cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount()).use()
    uid = comm.bcast(nccl.get_unique_id() if comm.Get_rank() == 0 else None, root=0)
    return nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())


def is_initialized() -> bool:
    """Whether :func:`init_process_group` has been called (and not destroyed)."""
    return _group is not None


def _require(what: str) -> _Group:
    if _group is None:
        raise ValueError(
            f"{what}: the default process group has not been initialized, please make sure "
            f"to call md.distributed.init_process_group() first (and start the script with "
            f"mpiexec -n N python script.py)"
        )
    if _group.broken is not None:
        raise RuntimeError(
            f"{what}: the process group is unusable since an earlier collective timed out "
            f"({_group.broken})"
        )
    return _group


def get_rank() -> int:
    """This process's number, 0 .. world size - 1."""
    return _require("get_rank").rank


def get_world_size() -> int:
    """The number of processes in the group."""
    return _require("get_world_size").size


def get_backend() -> str:
    return _require("get_backend").backend


def destroy_process_group() -> None:
    """Leave the group (MPI itself is finalized when the process exits)."""
    global _group
    if _group is None:
        _require("destroy_process_group")
    group, _group = _group, None
    if group.broken is None:  # after a timeout the peers are gone: nothing to free with them
        if group.nccl is not None:
            group.nccl.destroy()
        group.comm.Free()


# ------------------------------------------------------------------------ waiting


class Work:
    """A collective in flight, as ``async_op=True`` returns it (PyTorch's ``Work``).

    ``wait()`` blocks until it is done (polling against the group's timeout) and
    finishes it: the result is in the tensor after ``wait()``, not before.
    """

    def __init__(self, name: str, test, finish=None, on_timeout=None):
        self.name = name
        self._test, self._finish, self._on_timeout = test, finish, on_timeout
        self._group = _group
        self._deadline = time.monotonic() + _group.timeout_s
        self._done = False

    def is_completed(self) -> bool:
        if not self._done and self._test():
            self._complete()
        return self._done

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            self._finish()

    def wait(self) -> bool:
        pause, tries = 0.0, 0
        while not self._done:
            if self._test():
                self._complete()
                break
            tries += 1
            if time.monotonic() > self._deadline:
                self._fail()
            if tries > 100:  # after a short spin, sleep a little longer each time (up to 1 ms)
                pause = min(1e-3, max(2e-5, pause * 2))
                time.sleep(pause)
        return True

    def _fail(self):
        group = self._group
        message = (
            f"{self.name} timed out after {group.timeout_s:g} s (the timeout of "
            f"init_process_group) on rank {group.rank} of {group.size}: another process "
            f"never joined it (it died, hung, or took a different path through the code). "
            f"The job is aborted when this process exits."
        )
        group.broken = message
        if self._on_timeout is not None:
            self._on_timeout()
        atexit.register(group.comm.Abort, 1)  # MPI_Finalize would wait for the lost peer
        raise RuntimeError(message)


def _mpi_op(mpi, op: str):
    codes = {"sum": mpi.SUM, "avg": mpi.SUM, "product": mpi.PROD, "min": mpi.MIN, "max": mpi.MAX}
    return codes[op]  # avg: a sum, divided by the world size once it is done


def _canonical_op(op) -> str:
    key = getattr(op, "name", op)  # accepts ReduceOp-like enums with a .name
    key = str(key).lower()
    if key not in _OPS:
        raise ValueError(f"unknown reduce op {op!r}; expected one of {sorted(_OPS)}")
    return _OPS[key]


def _array_of(tensor, what: str):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what} expects a minideep Tensor, got {type(tensor).__name__}")
    return tensor.data


def _host_buffer(data):
    """A contiguous NumPy array holding ``data`` (the array itself when it already is one)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data)
    return backend.as_numpy(data)


def _write_back(data, buffer) -> None:
    if buffer is not data:
        data[...] = backend.to_device(buffer, backend.device_of(data))


# ------------------------------------------------------------------------ collectives


def _maybe_wait(work: Work, async_op: bool) -> Work | None:
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` over all processes, in place: afterwards every process holds the
    sum (``"sum"``), mean (``"avg"``), ``"product"``, ``"min"`` or ``"max"`` of all of them.

    ``async_op=True`` returns a :class:`Work` (call ``wait()`` before reading the tensor).
    """
    data = _array_of(tensor, "all_reduce")
    return _all_reduce_array(data, _canonical_op(op), async_op)


def _all_reduce_array(data, op: str, async_op: bool = False, name: str = "all_reduce"):
    group = _require(name)
    if op == "avg" and data.dtype.kind != "f":
        raise TypeError(f"{name}: op 'avg' needs a floating-point tensor, got {data.dtype}")
    if group.backend == "nccl":
        work = _nccl_all_reduce(group, data, op, name)
    else:
        mpi = _import_mpi()
        buffer = _host_buffer(data)
        request = group.comm.Iallreduce(mpi.IN_PLACE, buffer, op=_mpi_op(mpi, op))

        def finish():
            if op == "avg":
                buffer[...] /= group.size
            _write_back(data, buffer)

        work = Work(f"{name}(op={op!r}, shape={tuple(data.shape)})", request.Test, finish)
    return _maybe_wait(work, async_op)


def broadcast(tensor: Tensor, src: int = 0, group=None, async_op: bool = False):
    """Copy process ``src``'s ``tensor`` into ``tensor`` on every process, in place."""
    data = _array_of(tensor, "broadcast")
    return _broadcast_array(data, src, async_op)


def _broadcast_array(data, src: int, async_op: bool = False, name: str = "broadcast"):
    group = _require(name)
    if not 0 <= src < group.size:
        raise ValueError(f"{name}: src={src} is not a rank of a world of {group.size}")
    if group.backend == "nccl":
        work = _nccl_broadcast(group, data, src, name)
    else:
        buffer = _host_buffer(data)
        request = group.comm.Ibcast(buffer, root=src)
        finish = None if group.rank == src else (lambda: _write_back(data, buffer))
        work = Work(f"{name}(src={src}, shape={tuple(data.shape)})", request.Test, finish)
    return _maybe_wait(work, async_op)


def barrier(group=None, async_op: bool = False):
    """Wait until every process has reached this call."""
    group = _require("barrier")
    work = Work("barrier", group.comm.Ibarrier().Test)
    return _maybe_wait(work, async_op)


# ------------------------------------------------------------------------ NCCL (GPUs)


def _nccl_codes(data):
    from cupy.cuda import nccl

    if not backend.is_cupy_array(data):
        raise TypeError(
            "backend 'nccl' works on tensors on 'cuda' (CuPy arrays); got a NumPy array. Move "
            "the model and data with .to('cuda'), or use backend='mpi' on the CPU."
        )
    types = {
        "float16": nccl.NCCL_FLOAT16,
        "float32": nccl.NCCL_FLOAT32,
        "float64": nccl.NCCL_FLOAT64,
        "int32": nccl.NCCL_INT32,
        "int64": nccl.NCCL_INT64,
        "uint8": nccl.NCCL_UINT8,
        "int8": nccl.NCCL_INT8,
    }
    if data.dtype.name not in types:
        raise TypeError(f"backend 'nccl' cannot reduce dtype {data.dtype}")
    return nccl, types[data.dtype.name]


def _nccl_work(group, name, buffer, data):
    """Work that is done when the GPU has run everything queued so far on this stream."""
    import cupy

    event = cupy.cuda.Event(disable_timing=True)
    event.record()

    def test():
        group.nccl.check_async_error()
        return event.done

    return Work(name, test, lambda: _write_back(data, buffer), on_timeout=group.nccl.abort)


def _nccl_all_reduce(group, data, op, name):
    import cupy

    nccl, dtype = _nccl_codes(data)
    buffer = cupy.ascontiguousarray(data)
    code = {
        "sum": nccl.NCCL_SUM,
        "product": nccl.NCCL_PROD,
        "min": nccl.NCCL_MIN,
        "max": nccl.NCCL_MAX,
        "avg": getattr(nccl, "NCCL_AVG", nccl.NCCL_SUM),
    }[op]
    stream = cupy.cuda.get_current_stream().ptr
    group.nccl.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, dtype, code, stream)
    if op == "avg" and not hasattr(nccl, "NCCL_AVG"):  # NCCL < 2.10: sum, then divide
        buffer /= group.size
    return _nccl_work(group, f"{name}(op={op!r}, shape={tuple(data.shape)})", buffer, data)


def _nccl_broadcast(group, data, src, name):
    import cupy

    nccl, dtype = _nccl_codes(data)
    buffer = cupy.ascontiguousarray(data)
    stream = cupy.cuda.get_current_stream().ptr
    group.nccl.bcast(buffer.data.ptr, buffer.size, dtype, src, stream)
    return _nccl_work(group, f"{name}(src={src}, shape={tuple(data.shape)})", buffer, data)
