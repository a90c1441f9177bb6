"""How one MPI run's ranks start inside a block: one small class per rank launcher, one registry (RANK_LAUNCHERS).

"Launcher" means three things around here: Parsl's provider launcher (how a block starts its workers),
MPIExecutor's mpi_launcher, and these, the project's rank launchers (the user-facing --launcher).
Each rank launcher turns (hosts, ranks per node, program) into a command line; workflows/launch.py runs
it on the block's first node. Parsl's MPIExecutor hands each run its nodes (PARSL_MPI_NODELIST);
Flux places runs itself, so `flux` ignores the hosts and asks only for node and rank counts.
Pure: no Parsl, nothing run here, so it imports fast on a node.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence
from typing import ClassVar

from .placement import stamp

MPI_FLAVOURS = ("openmpi", "mpich")


def _mpich(tool: str) -> str:
    """Debian installs MPICH's tools with a .mpich suffix next to Open MPI's."""
    return f"{tool}.mpich" if shutil.which(f"{tool}.mpich") else tool


def compiler(flavour: str) -> str:
    return _mpich("mpicc") if flavour == "mpich" else "mpicc"


class RankLauncher:
    """One way to start an MPI run of len(hosts) * ranks_per_node ranks."""

    name: ClassVar[str]
    summary: ClassVar[str]
    under_flux: ClassVar[bool] = False  # the block runs inside `flux start`
    stamps_ranks: ClassVar[bool] = False  # each rank writes the run's stamps (no stamps around the launch)

    def command(self, flavour: str, hosts: Sequence[str], ranks_per_node: int, program: Sequence[str]) -> list[str]:
        raise NotImplementedError


class Mpirun(RankLauncher):
    """Open MPI's mpirun or MPICH's mpiexec, hosts and slots stated explicitly, each rank bound to a core."""

    name = "mpirun"
    summary = "mpirun (Open MPI) / mpiexec (MPICH) over the run's nodes"

    def command(self, flavour: str, hosts: Sequence[str], ranks_per_node: int, program: Sequence[str]) -> list[str]:
        n = str(len(hosts) * ranks_per_node)
        if flavour == "openmpi":
            return ["mpirun", "-np", n, "--host", ",".join(hosts), "--map-by", f"ppr:{ranks_per_node}:node",
                    "--bind-to", "core", "--oversubscribe", *program]
        if flavour == "mpich":
            return [_mpich("mpiexec"), "-n", n, "-ppn", str(ranks_per_node), "-hosts", ",".join(hosts),
                    "-bind-to", "core", *program]
        raise ValueError(f"unknown MPI flavour {flavour!r}")


class FluxRun(RankLauncher):
    """`flux run` in the block's Flux instance: Flux's scheduler places the run, one core per rank."""

    name = "flux"
    summary = "flux run -N K -n R in a Flux instance started in the block"
    under_flux = True
    stamps_ranks = True

    def command(self, flavour: str, hosts: Sequence[str], ranks_per_node: int, program: Sequence[str]) -> list[str]:
        # Every rank stamps the job's start and end itself: Flux frees a job's nodes before the worker's
        # wrapper could stamp, and the next run may take them at once (its interval must be the job's).
        ranked = f"{stamp('start')}; {shlex.join(program)}; rc=$?; {stamp('end')}; exit $rc"
        return ["flux", "run", "-N", str(len(hosts)), "-n", str(len(hosts) * ranks_per_node), "--cores-per-task=1",
                "-o", "cpu-affinity=per-task", "sh", "-c", ranked]


RANK_LAUNCHERS: dict[str, RankLauncher] = {launcher.name: launcher for launcher in (Mpirun(), FluxRun())}
DEFAULT_RANK_LAUNCHER = "mpirun"
