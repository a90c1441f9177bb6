"""The MPI launch inside a block: where the run goes, then its launcher's command line.

Parsl's SlurmProvider submits blocks with --ntasks-per-node=1, so Open MPI reads one slot per
node from Slurm. Instead of overriding SLURM_TASKS_PER_NODE by hand, the launch line states the
ranks per node and the hosts (workflows/launchers.py). Each launch gets its own TMPDIR:
concurrent mpiruns on one host race on /tmp/ompi.<host>.<uid> otherwise.
Run on a node as `python -m workflows.launch --source slurm|parsl [--launcher L] -- PROGRAM`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence

from workflows.launchers import DEFAULT_RANK_LAUNCHER, MPI_FLAVOURS, RANK_LAUNCHERS
from workflows.slurm import slurmd_port, unreachable


def expand_counts(text: str) -> list[int]:
    """Slurm's '2(x3),4' -> [2, 2, 2, 4] (SLURM_JOB_CPUS_PER_NODE and friends)."""
    counts: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not m:
            raise ValueError(f"not a Slurm count list: {text!r}")
        counts += [int(m[1])] * int(m[2] or 1)
    return counts


def placement_from_slurm(env: Mapping[str, str]) -> tuple[list[str], int]:
    """All nodes of the block and the CPUs Slurm gave each (they must agree)."""
    hosts = subprocess.run(["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]],
                           capture_output=True, text=True, check=True).stdout.split()
    cpus = set(expand_counts(env["SLURM_JOB_CPUS_PER_NODE"]))
    if len(cpus) != 1:
        raise ValueError(f"nodes of the block have different CPU counts: {env['SLURM_JOB_CPUS_PER_NODE']}")
    return hosts, cpus.pop()


def placement_from_parsl(env: Mapping[str, str]) -> tuple[list[str], int]:
    """The nodes MPIExecutor gave this task, and its ranks per node."""
    return env["PARSL_MPI_NODELIST"].split(","), int(float(env["PARSL_RANKS_PER_NODE"]))


def give_back_block(hosts: Sequence[str], env: Mapping[str, str]) -> None:
    """After a failed MPI run: if a node of the block died, cancel the block.

    Its worker would otherwise take the retry at once and fail it on the same dead node; with the
    block gone, Parsl's retry runs on another block (the manager counts as lost).
    """
    job = env.get("SLURM_JOB_ID")
    dead = unreachable(hosts, slurmd_port()) if job else []
    if job and dead:
        print(f"# nodes {','.join(dead)} unreachable: cancelling block job {job} so the retry runs elsewhere",
              file=sys.stderr, flush=True)
        subprocess.run(["scancel", job], timeout=30)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workflows.launch", description=__doc__.split("\n")[0])
    p.add_argument("--source", choices=("slurm", "parsl"), required=True,
                   help="read the nodes from the Slurm allocation or MPIExecutor's task environment")
    p.add_argument("--mpi", choices=MPI_FLAVOURS, default=MPI_FLAVOURS[0])
    p.add_argument("--launcher", choices=sorted(RANK_LAUNCHERS), default=DEFAULT_RANK_LAUNCHER,
                   help="the rank launcher (workflows/launchers.py) that starts the run's ranks")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="the run's time limit, for a rank launcher whose scheduler enforces it (flux)")
    p.add_argument("program", nargs="+")
    args = p.parse_args(argv)
    source = placement_from_slurm if args.source == "slurm" else placement_from_parsl
    hosts, per_node = source(os.environ)
    rank_launcher = RANK_LAUNCHERS[args.launcher]
    cmd = rank_launcher.command(args.mpi, hosts, per_node, args.program, args.time_limit)
    print(f"# launch {' '.join(cmd)}", flush=True)
    tmp = tempfile.mkdtemp(prefix="mpi-task.")
    try:
        rc = subprocess.run(cmd, env={**os.environ, "TMPDIR": tmp}).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc != 0 and not rank_launcher.under_flux:  # Flux drains a dead node itself and places retries elsewhere
        give_back_block(hosts, os.environ)
    return rc


if __name__ == "__main__":
    sys.exit(main())
