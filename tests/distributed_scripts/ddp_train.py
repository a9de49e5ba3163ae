"""Two processes on batches of B/2 against one process on batches of B (run with mpiexec).

Each rank trains a small float64 CNN, wrapped in DistributedDataParallel, on its
DistributedSampler share; rank 0 also trains a plain copy on the union of both shares'
batches. Every rank writes its final state_dict to OUT/rank<r>.npz, rank 0 the plain copy
to OUT/reference.npz; tests/test_distributed.py compares them.
"""

import sys
from pathlib import Path

import numpy as np

import minideep as md
import minideep.nn.functional as F
from minideep import nn
from minideep.data import DataLoader, DistributedSampler, MovingShapes, TensorDataset
from minideep.nn.parallel import DistributedDataParallel

BATCH, EPOCHS, SIZE = 8, 2, 12


class Net(nn.Module):
    """Conv, pool, a linear layer applied twice (a shared weight: two contributions to
    its gradient), a head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.mix = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = self.pool(F.relu(self.conv(x))).mean(axis=(2, 3))
        h = self.mix(h).tanh()
        return self.head(self.mix(h).tanh())


def main(out: Path) -> None:
    md.distributed.init_process_group("mpi", timeout=30)
    rank, world = md.distributed.get_rank(), md.distributed.get_world_size()
    clips = MovingShapes(n_clips=12, frames=2, size=SIZE, channels=1, label="shape", seed=0)
    x = clips.videos.reshape(-1, 1, SIZE, SIZE) / 255.0  # 24 frames, float64
    y = clips.labels.repeat(2)
    data = TensorDataset(md.tensor(x, dtype=md.float64), md.tensor(y))

    md.manual_seed(rank)  # a different start on every rank: DDP broadcasts rank 0's weights
    model = DistributedDataParallel(Net().double(), bucket_cap_mb=256 / 2**20)  # 3 buckets
    optimizer = md.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    sampler = DistributedSampler(data, seed=7)
    loader = DataLoader(data, batch_size=BATCH // world, sampler=sampler)
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    md.save(model.state_dict(), out / f"rank{rank}.npz")

    if rank == 0:  # one process on the same batches of BATCH, from rank 0's start
        md.manual_seed(0)
        reference = Net().double()
        optimizer = md.optim.SGD(reference.parameters(), lr=0.5, momentum=0.9)
        shares = [DistributedSampler(data, world, r, seed=7) for r in range(world)]
        per_rank = BATCH // world
        for epoch in range(EPOCHS):
            orders = []
            for share in shares:
                share.set_epoch(epoch)
                orders.append(list(share))
            for start in range(0, len(orders[0]), per_rank):
                idx = np.concatenate([o[start : start + per_rank] for o in orders])
                xb, yb = md.tensor(x[idx], dtype=md.float64), md.tensor(y[idx])
                loss = F.cross_entropy(reference(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        md.save(reference.state_dict(), out / "reference.npz")
    md.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
