"""DistributedDataParallel's edge cases on every rank (run with mpiexec -n 2).

Prints "ddp features ok on rank r" when every check passes.
"""

import numpy as np

import minideep as md
from minideep import nn
from minideep.nn.parallel import DistributedDataParallel


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.used, self.unused = nn.Linear(3, 3), nn.Linear(3, 1), nn.Linear(3, 1)

    def forward(self, x):
        return self.used(self.body(x).tanh())


def main() -> None:
    md.distributed.init_process_group("mpi", timeout=30)
    rank, world = md.distributed.get_rank(), md.distributed.get_world_size()
    x = md.tensor(np.full((2, 3), rank + 1.0), dtype=md.float64)

    model = DistributedDataParallel(TwoHeads().double())
    try:
        model(x)
    except RuntimeError as error:
        assert "unused.weight" in str(error) and "find_unused_parameters" in str(error)
    else:
        raise AssertionError("an unused parameter was not reported")

    md.manual_seed(0)
    model = DistributedDataParallel(TwoHeads().double(), find_unused_parameters=True)
    model(x).sum().backward()
    assert np.all(model.module.unused.weight.grad.numpy() == 0)
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}

    # no_sync: local gradients; the next synchronised backward averages the accumulated sum
    model.zero_grad()
    with model.no_sync():
        model(x).sum().backward()
    local = model.module.used.weight.grad.numpy().copy()
    model(x).sum().backward()
    total = md.tensor(2 * local, dtype=md.float64)
    md.distributed.all_reduce(total, op="avg")
    np.testing.assert_allclose(model.module.used.weight.grad.numpy(), total.numpy(), rtol=1e-14)
    np.testing.assert_allclose(2 * grads["module.used.weight"], total.numpy(), rtol=1e-14)
    print(f"ddp features ok on rank {rank} of {world}", flush=True)
    md.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
