"""DataLoader: batches of samples from a dataset, as minideep Tensors.

One epoch is one pass over ``range(len(dataset))``, in order or shuffled, cut into
groups of ``batch_size`` indices; each group's samples are stacked by
:func:`default_collate` into one Tensor per field::

    [(clip_0, 3), (clip_1, 0), ...]  ->  (Tensor (B, *clip.shape), Tensor int64 (B,))

With ``num_workers=N`` the batches are loaded by N worker processes, as PyTorch does
(decoding video is slow, and a process per core decodes in parallel):

* the main process draws the epoch's order and cuts it into batches of indices, as
  without workers; batch ``b`` goes to worker ``b % N`` (round robin), at most
  ``prefetch_factor * N`` batches ahead of the one the loop is at;
* each worker loads its samples, collates them and sends the batch back through a
  queue; the main process hands the batches out in their order, so an epoch gives the
  same batches, in the same order, as ``num_workers=0``;
* a sample that raises in a worker raises in the main process, naming the sample index
  and the worker's traceback; a worker that dies (killed, out of memory, ``os._exit``)
  is noticed within a fraction of a second and reported instead of waited for;
* the workers stop at the end of the epoch, or when the loop is left and the iterator
  is garbage-collected.
"""

from __future__ import annotations

import copy
import functools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import random
import signal
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..tensor import Tensor


def default_collate(samples: list, device: str = "cpu"):
    """Stack a list of samples into a batch, field by field.

    Tuples and lists are collated per position, dicts per key. Tensors are stacked
    keeping their dtype; NumPy arrays and Python numbers follow ``md.tensor``'s rules
    (floats -> float32, integers -> int64, so class labels become int64). Strings are
    returned as a list. Everything else in a field is left as a list.
    """
    first = samples[0]
    if isinstance(first, tuple | list):
        if any(len(s) != len(first) for s in samples):
            raise ValueError(
                f"default_collate: samples have different lengths {[len(s) for s in samples]}"
            )
        return type(first)(default_collate(list(field), device) for field in zip(*samples))
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples], device) for key in first}
    if isinstance(first, Tensor):
        xp = first.xp
        data = xp.stack([s.data for s in samples])
        return Tensor(data, dtype=data.dtype, device=device)
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, np.ndarray | np.generic | int | float | bool) or hasattr(
        first, "__array__"
    ):
        shapes = {np.shape(s) for s in samples}
        if len(shapes) > 1:
            raise ValueError(
                f"default_collate: cannot stack samples of different shapes {sorted(shapes)}"
            )
        if hasattr(first, "__cuda_array_interface__"):  # CuPy arrays stay on their device
            return Tensor(backend.get_array_module(first).stack(samples), device=device)
        return Tensor(np.stack([np.asarray(s) for s in samples]), device=device)
    return list(samples)


class DataLoader:
    """Iterate over a dataset in batches.

    Args:
        dataset: anything with ``len()`` and ``[i]``.
        batch_size: samples per batch.
        shuffle: a new random order every epoch, drawn from ``generator`` or minideep's
            generator, so ``md.manual_seed(n)`` makes the orders repeat.
        drop_last: skip the last batch when it is smaller than ``batch_size``.
        collate_fn: ``list of samples -> batch`` (default :func:`default_collate`).
        generator: a ``numpy.random.Generator`` of its own for the shuffles.
        device: where the batch tensors are put (``"cpu"`` or ``"cuda"``).
        sampler: an iterable of indices to draw instead (e.g. a ``DistributedSampler``);
            excludes ``shuffle``.
        num_workers: worker processes loading batches in parallel (0: load in the main
            process). Workers start with ``fork`` on Linux (they inherit the dataset as
            it is), else ``spawn`` (the dataset, ``collate_fn`` and ``worker_init_fn``
            must then be picklable). They must not use the GPU: datasets give host
            (NumPy) data, and batches move to ``device`` in the main process.
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker once it
            is seeded, before it loads anything (see :func:`get_worker_info`).
        prefetch_factor: batches each worker works ahead.
        timeout: seconds to wait for one batch from the workers before giving up
            (0: no limit; a dead worker is reported at once either way).
        multiprocessing_context: ``"fork"``, ``"spawn"`` or ``"forkserver"`` to choose the
            start method of the workers.

    ``len(loader)`` is the number of batches per epoch.

    Randomness in workers. The order of the samples is drawn in the main process, so it
    does not depend on ``num_workers``. Each epoch the loader derives a base seed from
    its generator (from a copy of it: the main process's random draws stay those of
    ``num_workers=0``) and worker ``k`` seeds minideep's generator, NumPy's global one and
    Python's ``random`` with ``base_seed + k``, as PyTorch does. A dataset without random
    draws, or one drawing from generators of its own (``RandomCrop(generator=...)``, a
    seed per sample), gives identical batches with any ``num_workers``. Augmentations
    drawing from the global generator (``md.manual_seed``'s) are different draws with
    workers than without - reproducible for a seed and a number of workers, and
    different in every worker and epoch.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable | None = None,
        generator: np.random.Generator | None = None,
        device: str = "cpu",
        sampler=None,
        num_workers: int = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        prefetch_factor: int = 2,
        timeout: float = 0,
        multiprocessing_context: str | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0 or prefetch_factor < 1 or timeout < 0:
            raise ValueError(
                f"need num_workers >= 0, prefetch_factor >= 1 and timeout >= 0, got "
                f"num_workers={num_workers}, prefetch_factor={prefetch_factor}, timeout={timeout}"
            )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.sampler = sampler
        self.drop_last, self.generator = drop_last, generator
        self.device = backend.check_device(device)
        self.collate_fn = collate_fn or (lambda samples: default_collate(samples, self.device))
        self.num_workers, self.worker_init_fn = num_workers, worker_init_fn
        self.prefetch_factor, self.timeout = prefetch_factor, timeout
        if multiprocessing_context is None:
            linux_fork = sys.platform.startswith("linux")
            linux_fork = linux_fork and "fork" in multiprocessing.get_all_start_methods()
            multiprocessing_context = "fork" if linux_fork else "spawn"
        self.multiprocessing_context = multiprocessing_context
        # What workers collate with: picklable (for spawn), and on the host (workers never
        # touch the GPU; batches move to `device` in the main process).
        self._worker_collate = collate_fn or functools.partial(default_collate, device="cpu")
        self._epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _index_batches(self) -> list:
        """This epoch's batches of dataset indices (the shuffle is drawn here)."""
        n = len(self.dataset)
        if self.sampler is not None:
            order = list(self.sampler)
            n = len(order)
        elif self.shuffle:
            order = (self.generator or backend.numpy_rng()).permutation(n)
        else:
            order = np.arange(n)
        batches = []
        for start in range(0, n, self.batch_size):
            indices = order[start : start + self.batch_size]
            if self.drop_last and len(indices) < self.batch_size:
                break
            batches.append([int(i) for i in indices])
        return batches

    def __iter__(self) -> Iterator:
        batches = self._index_batches()
        self._epoch += 1
        if self.num_workers == 0:
            return (self.collate_fn([self.dataset[i] for i in b]) for b in batches)
        return _WorkerIterator(self, batches, self._base_seed())

    def _base_seed(self) -> int:
        """A 63-bit seed for this epoch's workers, drawn from a copy of the generator.

        A copy, so the generator (and every later draw of the program) does not move:
        shuffles and model randomness stay those of ``num_workers=0``. Mixed with the
        epoch number, so the workers' draws change from epoch to epoch.
        """
        peek = int(copy.deepcopy(self.generator or backend.numpy_rng()).integers(2**62))
        words = np.random.SeedSequence([peek, self._epoch]).generate_state(2, np.uint32)
        return (int(words[0]) << 31) ^ int(words[1])


# ---------------------------------------------------------------------------
# Worker processes.


@dataclass
class WorkerInfo:
    """What :func:`get_worker_info` says inside a worker process (PyTorch's fields)."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker: its ``id``, ``num_workers``, ``seed`` and ``dataset``.

    ``None`` in the main process. A dataset can use it to split work between workers
    or to seed generators of its own.
    """
    return _worker_info


@dataclass
class _Failure:
    """An exception raised in a worker, in a form that crosses the process boundary."""

    worker_id: int
    where: str
    exc_type: type | None  # None when the type itself cannot be pickled
    type_name: str
    message: str
    traceback: str

    @classmethod
    def capture(cls, worker_id: int, where: str, error: BaseException) -> _Failure:
        exc_type = type(error)
        try:
            pickle.dumps(exc_type)
        except Exception:
            exc_type = None
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return cls(worker_id, where, exc_type, type(error).__qualname__, str(error), tb)

    def reraise(self):
        """Raise the worker's exception (same type when possible) in the main process."""
        text = (
            f"{self.type_name} in DataLoader worker {self.worker_id} while {self.where}: "
            f"{self.message}\n\nOriginal traceback in the worker:\n{self.traceback}"
        )
        try:
            error = self.exc_type(text) if self.exc_type is not None else None
        except Exception:  # an exception class whose __init__ wants other arguments
            error = None
        if not isinstance(error, BaseException):
            error = RuntimeError(text)
        raise error


def _dumps(obj) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _seed_worker(seed: int) -> None:
    backend.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _load(dataset, collate, worker_id: int, b: int, indices: list):
    """Batch ``b``: its samples collated, or the :class:`_Failure` that stopped it."""
    samples = []
    for i in indices:
        try:
            samples.append(dataset[i])
        except Exception as error:
            return _Failure.capture(worker_id, f"loading sample index {i} (batch {b})", error)
    try:
        return collate(samples)
    except Exception as error:
        return _Failure.capture(worker_id, f"collating batch {b} (sample indices {indices})", error)


def _worker_loop(dataset, tasks, results, collate, worker_id, num_workers, seed, init_fn, parent):
    """The body of worker process ``worker_id``: load batches until told to stop.

    ``tasks`` and ``results`` are this worker's own pipes to the main process: it gets
    ``(b, indices)`` (or None: stop) and sends back the pickled ``(b, batch)``. A send
    is complete when it returns, and no lock is shared with other workers, so a worker
    that dies loses nothing but the batch it was loading.
    """
    global _worker_info
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    _seed_worker(seed)
    init_failure = None
    if init_fn is not None:
        try:
            init_fn(worker_id)
        except Exception as error:
            init_failure = _Failure.capture(worker_id, "running worker_init_fn", error)
    try:
        while True:
            if not tasks.poll(1.0):
                if os.getppid() != parent:  # the main process is gone: nobody wants batches
                    return
                continue
            task = tasks.recv()
            if task is None:
                return
            b, indices = task
            result = init_failure or _load(dataset, collate, worker_id, b, indices)
            try:  # a batch that cannot be pickled is reported, not lost
                message = _dumps((b, result))
            except Exception as error:
                where = f"sending batch {b} (sample indices {indices}) to the main process"
                message = _dumps((b, _Failure.capture(worker_id, where, error)))
            results.send_bytes(message)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the main process closed our pipes: the epoch was abandoned


def _to_device(batch, device: str):
    """Move the Tensors of a collated batch to ``device`` (a no-op on the CPU)."""
    if device == "cpu":
        return batch
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, tuple | list):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def _shutdown(processes, tasks, results, grace: float = 0.5) -> None:
    """Stop the workers: ask them, read what they still send, terminate the slow ones.

    An idle worker stops at once; one still loading a batch nobody will use is given
    ``grace`` seconds, then terminated (it shares no lock with anyone, so that is safe).
    """
    for conn in tasks:
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + grace
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        open_results = [r for r in results if not r.closed]
        for r in multiprocessing.connection.wait(open_results, timeout=0.02):
            try:  # a worker blocked sending a batch nobody reads would never stop
                r.recv_bytes()
            except (EOFError, OSError):
                r.close()
    for p in processes:
        if p.is_alive():
            p.terminate()
        p.join(timeout=1.0)
    for conn in (*tasks, *results):
        conn.close()


class _WorkerIterator:
    """One epoch of a DataLoader with ``num_workers > 0``: batches in their order."""

    def __init__(self, loader: DataLoader, batches: list, base_seed: int):
        self._batches, self._device, self._timeout = batches, loader.device, loader.timeout
        self._next_send = self._next_out = 0
        self._ready: dict[int, object] = {}  # batch number -> batch (or _Failure)
        self._owner: dict[int, int] = {}  # batch number sent -> worker loading it
        n = loader.num_workers if batches else 0
        ctx = multiprocessing.get_context(loader.multiprocessing_context)
        self._processes, self._tasks, self._results = [], [], []
        for k in range(n):
            task_out, task_in = ctx.Pipe(duplex=False)  # (reader, writer)
            result_out, result_in = ctx.Pipe(duplex=False)
            args = (loader.dataset, task_out, result_in, loader._worker_collate, k, n)
            args += (base_seed + k, loader.worker_init_fn, os.getpid())
            process = ctx.Process(target=_worker_loop, args=args, daemon=True)
            process.start()
            task_out.close()  # the worker's ends: only the worker holds them now, so its
            result_in.close()  # death closes them and our reads see the end of the pipe
            self._processes.append(process)
            self._tasks.append(task_in)
            self._results.append(result_out)
        self._stop = weakref.finalize(self, _shutdown, self._processes, self._tasks, self._results)
        for _ in range(loader.prefetch_factor * n):
            self._send()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._batches)

    def _send(self) -> None:
        b = self._next_send
        if b < len(self._batches):
            worker = b % len(self._processes)  # round robin
            try:
                self._tasks[worker].send((b, self._batches[b]))
            except OSError:
                pass  # a dead worker: _check_workers reports it
            self._owner[b] = worker
            self._next_send += 1

    def _receive(self, timeout: float) -> bool:
        """Take the batches that have arrived, waiting up to ``timeout`` s for one."""
        open_results = [r for r in self._results if not r.closed]
        ready = multiprocessing.connection.wait(open_results, timeout=timeout)
        for r in ready:
            try:
                b, result = pickle.loads(r.recv_bytes())
            except (EOFError, OSError):  # the worker is gone
                r.close()
                continue
            self._ready[b] = result
        return bool(ready)

    def _check_workers(self) -> None:
        """Raise if a worker that still owes batches has died."""
        for worker in sorted({k for c, k in self._owner.items() if c not in self._ready}):
            process = self._processes[worker]
            if process.is_alive():
                continue
            self._receive(0)  # what it sent before dying is already complete in the pipe
            lost = [c for c, k in self._owner.items() if k == worker and c not in self._ready]
            if not lost:
                continue
            self._stop()
            raise RuntimeError(
                f"DataLoader worker {worker} (pid {process.pid}) "
                f"{_exit_reason(process.exitcode)} while loading batch {lost[0]} (sample "
                f"indices {self._batches[lost[0]]}); the epoch cannot be completed"
            )

    def __next__(self):
        b = self._next_out
        if b >= len(self._batches):
            self._stop()
            raise StopIteration
        started = time.monotonic()
        while b not in self._ready:
            if self._receive(0.1):
                continue
            self._check_workers()
            if self._timeout and time.monotonic() - started > self._timeout:
                self._stop()
                raise RuntimeError(
                    f"DataLoader timed out after {self._timeout:g} s waiting for batch {b} "
                    f"from worker {self._owner[b]}"
                )
        result = self._ready.pop(b)
        del self._owner[b]
        self._next_out += 1
        if isinstance(result, _Failure):
            self._stop()
            result.reraise()
        self._send()
        if self._next_out == len(self._batches):
            self._stop()  # the last batch is in: stop the workers now
        return _to_device(result, self._device)
