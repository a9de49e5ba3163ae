"""DataLoader with worker processes: the same batches as without, errors named, no hangs."""

import contextlib
import gc
import os
import signal
import time

import numpy as np
import pytest

import minideep as md
from minideep import backend
from minideep.data import DataLoader, TensorDataset, get_worker_info


class Numbers:
    """Sample i: a (3, 4) float array of i's, the label i, and a dict field."""

    def __init__(self, n=23, fail_at=None, exit_at=None, kill_at=None, sleep=0.0):
        self.n, self.fail_at, self.exit_at, self.kill_at, self.sleep = (
            n, fail_at, exit_at, kill_at, sleep,
        )  # fmt: skip

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"sample {i} is broken")
        if i == self.exit_at:
            os._exit(3)
        if i == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.sleep)
        return np.full((3, 4), i, np.float32), i, {"double": 2 * i}


class OwnRandom(Numbers):
    """Augmentation from a generator of its own, seeded per sample: the same anywhere."""

    def __getitem__(self, i):
        x, y, extra = super().__getitem__(i)
        rng = np.random.default_rng([7, i])
        return x + rng.normal(size=x.shape).astype(np.float32), y, extra


class GlobalRandom(Numbers):
    """Augmentation from minideep's global generator (and who loaded the sample)."""

    def __getitem__(self, i):
        x, y, _ = super().__getitem__(i)
        info = get_worker_info()
        worker = -1 if info is None else info.id
        return x + backend.numpy_rng().random(), y, worker


def _arrays(batch):
    """A batch as plain nested NumPy, to compare."""
    if isinstance(batch, md.Tensor):
        return batch.numpy().copy()
    if isinstance(batch, tuple | list):
        return [_arrays(b) for b in batch]
    if isinstance(batch, dict):
        return {k: _arrays(v) for k, v in batch.items()}
    return batch


def _epochs(loader, n=2):
    return [[_arrays(b) for b in loader] for _ in range(n)]


def _assert_same(a, b):
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    else:
        assert a == b


@contextlib.contextmanager
def _deadline(seconds):
    """Fail (instead of hanging the test run) if the block takes longer than ``seconds``."""

    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s: the DataLoader hangs")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("dataset", [Numbers(), OwnRandom()], ids=["plain", "own-generator"])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=4),
        dict(batch_size=4, shuffle=True),
        dict(batch_size=5, shuffle=True, drop_last=True),
        dict(batch_size=3, shuffle=True, generator="rng"),
        dict(batch_size=2, sampler=[9, 1, 7, 3, 22, 0, 5]),
    ],
    ids=["in-order", "shuffled", "drop-last", "own-generator", "sampler"],
)
def test_workers_give_the_batches_of_no_workers_in_the_same_order(dataset, kwargs):
    results = []
    for workers in (0, 1, 2):
        md.manual_seed(3)
        args = dict(kwargs)
        if args.get("generator") == "rng":
            args["generator"] = np.random.default_rng(5)
        with _deadline(30):
            results.append(_epochs(DataLoader(dataset, num_workers=workers, **args)))
        results[-1].append(backend.numpy_rng().random())  # the main generator's next draw
    _assert_same(results[0], results[1])
    _assert_same(results[0], results[2])
    assert len(results[0][0]) == len(DataLoader(dataset, **dict(kwargs, generator=None)))


def test_batches_go_round_robin_and_global_draws_are_seeded_per_worker():
    def run():
        md.manual_seed(0)
        return _epochs(DataLoader(GlobalRandom(n=12), batch_size=2, num_workers=3), n=2)

    first, again = run(), run()
    _assert_same(first, again)  # reproducible for a seed and a number of workers
    for epoch in first:
        for b, (_, _, workers) in enumerate(epoch):
            assert workers.tolist() == [b % 3, b % 3]
    x0 = [batch[0][:, 0, 0] for batch in first[0]]
    x1 = [batch[0][:, 0, 0] for batch in first[1]]
    assert not np.allclose(np.concatenate(x0), np.concatenate(x1))  # new draws each epoch


def _record_init(worker_id):
    info = get_worker_info()
    assert info.id == worker_id and info.num_workers == 2
    backend.manual_seed(1000 + worker_id)  # e.g. a seed scheme of one's own


def test_worker_init_fn_runs_in_each_worker_with_get_worker_info():
    assert get_worker_info() is None  # in the main process
    loader = DataLoader(GlobalRandom(n=4), batch_size=1, num_workers=2, worker_init_fn=_record_init)
    draws = [float(x.numpy()[0, 0, 0] - y.numpy()[0]) for x, y, _ in loader]
    expected = []
    for worker in (0, 1):
        backend.manual_seed(1000 + worker)
        expected.append([backend.numpy_rng().random() for _ in range(2)])
    in_order = [expected[0][0], expected[1][0], expected[0][1], expected[1][1]]  # round robin
    np.testing.assert_allclose(draws, in_order, atol=1e-6)  # float32 data


def test_an_error_in_a_worker_is_raised_naming_the_sample_index():
    loader = DataLoader(Numbers(fail_at=13), batch_size=4, num_workers=2)
    with _deadline(30), pytest.raises(ValueError) as err:
        list(loader)
    message = str(err.value)
    assert "sample index 13" in message and "batch 3" in message
    assert "sample 13 is broken" in message
    assert "Original traceback" in message and "__getitem__" in message


class _LocalError(Exception):
    def __init__(self, a, b):  # cannot be rebuilt from a message alone
        super().__init__(f"{a} and {b}")


class NeedsTwoArguments(Numbers):
    def __getitem__(self, i):
        if i == 2:
            raise _LocalError("this", "that")
        return super().__getitem__(i)


def test_an_exception_that_cannot_be_rebuilt_becomes_a_runtime_error():
    with _deadline(30), pytest.raises(RuntimeError, match="_LocalError .*sample index 2"):
        list(DataLoader(NeedsTwoArguments(n=6), batch_size=2, num_workers=2))


def _bad_collate(samples):
    raise TypeError("cannot collate these")


def test_a_collate_error_names_the_batch():
    loader = DataLoader(Numbers(n=6), batch_size=3, num_workers=1, collate_fn=_bad_collate)
    with _deadline(30), pytest.raises(TypeError, match=r"collating batch 0 \(sample indices"):
        list(loader)


def _failing_init(worker_id):
    raise OSError(f"worker {worker_id} cannot open its files")


def test_a_failing_worker_init_fn_is_reported():
    loader = DataLoader(Numbers(n=6), batch_size=3, num_workers=2, worker_init_fn=_failing_init)
    with _deadline(30), pytest.raises(OSError, match="worker_init_fn.*cannot open its files"):
        list(loader)


@pytest.mark.parametrize(
    "dataset, how",
    [(Numbers(exit_at=13), "exited with code 3"), (Numbers(kill_at=6), "killed by SIGKILL")],
    ids=["os._exit", "SIGKILL"],
)
def test_a_dead_worker_is_reported_instead_of_waited_for(dataset, how):
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    start = time.monotonic()
    with _deadline(20), pytest.raises(RuntimeError, match=how) as err:
        list(loader)
    assert time.monotonic() - start < 10
    assert "DataLoader worker" in str(err.value) and "sample indices" in str(err.value)
    bad = 13 if "exited" in how else 6
    assert f"batch {bad // 4}" in str(err.value)


def test_workers_stop_at_the_end_of_an_epoch():
    it = iter(DataLoader(Numbers(n=8), batch_size=2, num_workers=2))
    processes = list(it._processes)
    assert len(list(it)) == 4
    assert not any(p.is_alive() for p in processes)


def test_workers_stop_when_the_loop_is_left_and_the_iterator_collected():
    it = iter(DataLoader(Numbers(n=400), batch_size=2, num_workers=2))
    next(it)
    processes = list(it._processes)
    del it
    gc.collect()
    deadline = time.monotonic() + 5
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(p.is_alive() for p in processes)


def test_timeout_gives_up_on_a_slow_batch():
    loader = DataLoader(Numbers(n=4, sleep=0.5), batch_size=2, num_workers=1, timeout=0.2)
    with _deadline(20), pytest.raises(RuntimeError, match="timed out after 0.2 s"):
        next(iter(loader))


def test_spawned_workers_give_the_same_batches():
    data = TensorDataset(np.arange(40, dtype=np.float32).reshape(10, 4), np.arange(10))
    md.manual_seed(1)
    expected = _epochs(DataLoader(data, batch_size=3, shuffle=True), n=1)
    md.manual_seed(1)
    loader = DataLoader(
        data, batch_size=3, shuffle=True, num_workers=1, multiprocessing_context="spawn"
    )
    with _deadline(60):
        _assert_same(_epochs(loader, n=1), expected)


@pytest.mark.parametrize(
    "kwargs", [dict(num_workers=-1), dict(prefetch_factor=0), dict(timeout=-1)]
)
def test_bad_worker_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DataLoader(Numbers(), **kwargs)
