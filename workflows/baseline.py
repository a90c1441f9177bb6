"""The floor: K MPI runs in one Slurm allocation with plain mpirun steps, as fast as they go.

Run inside an allocation (`salloc -N4 --exclusive python -m workflows.baseline ...`): the nodes are
split into lanes of K nodes, each lane runs its share of the runs back to back, the lanes in parallel.
Outputs have the same format as the workflows', so the same verifier checks them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from workflows import launch
from workflows.launchers import RANK_LAUNCHERS


def lanes(hosts: Sequence[str], nodes_per_run: int) -> list[list[str]]:
    return [list(hosts[i:i + nodes_per_run]) for i in range(0, len(hosts) - nodes_per_run + 1, nodes_per_run)]


def run_one(index: int, hosts: list[str], per_node: int, binary: str, out: Path) -> None:
    tmp = tempfile.mkdtemp(prefix="mpi-task.")
    try:
        with open(out / f"run-{index}.out", "w") as f:
            f.write(f"# start {time.time()}\n")
            f.flush()
            subprocess.run(RANK_LAUNCHERS["mpirun"].command("openmpi", hosts, per_node, [binary]), stdout=f,
                           stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": tmp})
            f.write(f"# end {time.time()}\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workflows.baseline", description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--nodes-per-run", type=int, default=2)
    p.add_argument("--binary", required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    hosts, per_node = launch.placement_from_slurm(os.environ)
    args.out.mkdir(parents=True, exist_ok=True)
    work = lanes(hosts, args.nodes_per_run)
    def lane_runs(lane: list[str], first: int) -> None:
        for i in range(first, args.repeats, len(work)):
            run_one(i, lane, per_node, args.binary, args.out)

    threads = [threading.Thread(target=lane_runs, args=(lane, i0)) for i0, lane in enumerate(work)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
