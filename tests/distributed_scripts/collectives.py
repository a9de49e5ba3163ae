"""all_reduce, broadcast and barrier semantics on every rank (run with mpiexec -n N).

Prints "collectives ok on rank r of N" when every check passes.
"""

from datetime import timedelta

import numpy as np

import minideep as md
import minideep.distributed as dist


def main() -> None:
    dist.init_process_group("mpi", timeout=timedelta(seconds=30))
    assert dist.is_initialized() and dist.get_backend() == "mpi"
    rank, world = dist.get_rank(), dist.get_world_size()
    ranks = np.arange(world, dtype=np.float64)

    def value(r):  # what rank r contributes
        return np.array([r + 1.0, 2.0 * r - 1.0, 0.5])

    expected = {
        "sum": sum(value(r) for r in ranks),
        "avg": sum(value(r) for r in ranks) / world,
        "mean": sum(value(r) for r in ranks) / world,
        "max": np.max([value(r) for r in ranks], axis=0),
        "min": np.min([value(r) for r in ranks], axis=0),
        "product": np.prod([value(r) for r in ranks], axis=0),
    }
    for op, want in expected.items():
        t = md.tensor(value(rank), dtype=md.float64)
        data = t.data
        assert dist.all_reduce(t, op=op) is None
        assert t.data is data, "all_reduce works in place on tensor.data"
        np.testing.assert_allclose(t.numpy(), want, rtol=1e-15, err_msg=op)
    t = md.tensor(value(rank), dtype=md.float64)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    np.testing.assert_allclose(t.numpy(), expected["avg"], rtol=1e-15)

    counts = md.tensor(np.array([rank, 1]))  # int64
    dist.all_reduce(counts)
    assert counts.numpy().tolist() == [sum(range(world)), world]

    # a non-contiguous view is reduced and written back into the same array
    base = np.arange(6.0).reshape(2, 3) * (rank + 1)
    view = md.Tensor(base.T)
    dist.all_reduce(view)
    np.testing.assert_allclose(base, np.arange(6.0).reshape(2, 3) * sum(range(1, world + 1)))

    # async_op: a Work whose wait() finishes the reduction
    t = md.tensor(value(rank), dtype=md.float64)
    work = dist.all_reduce(t, op="sum", async_op=True)
    assert work.wait() and work.is_completed()
    np.testing.assert_allclose(t.numpy(), expected["sum"], rtol=1e-15)

    # broadcast from the last rank (src != 0 when world > 1)
    src = world - 1
    b = md.tensor(np.full((2, 2), 10.0 * rank + 3.0), dtype=md.float64)
    dist.broadcast(b, src=src)
    np.testing.assert_array_equal(b.numpy(), np.full((2, 2), 10.0 * src + 3.0))
    b = md.tensor(np.full((2, 2), 10.0 * rank + 3.0), dtype=md.float64)
    dist.broadcast(b, src=0)
    np.testing.assert_array_equal(b.numpy(), np.full((2, 2), 3.0))

    for bad in ("median", 3):
        try:
            dist.all_reduce(md.zeros(2), op=bad)
        except ValueError as error:
            assert "reduce op" in str(error)
        else:
            raise AssertionError(f"op={bad!r} accepted")
    try:
        dist.broadcast(md.zeros(2), src=world)
    except ValueError as error:
        assert f"src={world}" in str(error)
    else:
        raise AssertionError("src out of range accepted")

    dist.barrier()
    try:
        dist.init_process_group("mpi")
    except ValueError as error:
        assert "twice" in str(error)
    else:
        raise AssertionError("a second init_process_group was accepted")
    dist.destroy_process_group()
    assert not dist.is_initialized()
    print(f"collectives ok on rank {rank} of {world}", flush=True)


if __name__ == "__main__":
    main()
