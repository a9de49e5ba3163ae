"""A collective whose peer is gone: rank 1 hangs or exits, rank 0 must time out.

mpiexec -n 2 python timeout.py hang|exit
"""

import os
import sys
import time

import minideep as md
import minideep.distributed as dist


def main(mode: str) -> None:
    dist.init_process_group("mpi", timeout=2.0)
    t = md.ones(3)
    dist.all_reduce(t)  # both alive: fine
    if dist.get_rank() == 1:
        if mode == "exit":
            os._exit(3)
        time.sleep(120)
    started = time.monotonic()
    try:
        dist.all_reduce(t)
    except RuntimeError as error:
        print(f"rank 0 raised after {time.monotonic() - started:.1f} s: {error}", flush=True)
        raise
    print("rank 0: all_reduce returned without its peer", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
