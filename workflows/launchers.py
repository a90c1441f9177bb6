"""How one MPI run's ranks start inside a block: one small class per rank launcher, one registry (RANK_LAUNCHERS).

"Launcher" means three things around here: Parsl's provider launcher (how a block starts its workers),
MPIExecutor's mpi_launcher, and these, the project's rank launchers (the user-facing --launcher).
Each rank launcher turns (hosts, ranks per node, program) into a command line; workflows/launch.py runs
it on the block's first node. Parsl's MPIExecutor hands each run its nodes (PARSL_MPI_NODELIST);
Flux places runs itself, so `flux` (workflows.flux.rank_launcher, with the rest of Flux) ignores the
hosts and asks only for node and rank counts. Each is a RankLauncher (workflows.rank_launcher).
Pure: no Parsl, nothing run here, so it imports fast on a node.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from .flux.rank_launcher import FluxRun
from .rank_launcher import RankLauncher

__all__ = ["DEFAULT_RANK_LAUNCHER", "MPI_FLAVOURS", "RANK_LAUNCHERS", "FluxRun", "Mpirun", "RankLauncher", "compiler"]

MPI_FLAVOURS = ("openmpi", "mpich")


def _mpich(tool: str) -> str:
    """Debian installs MPICH's tools with a .mpich suffix next to Open MPI's."""
    return f"{tool}.mpich" if shutil.which(f"{tool}.mpich") else tool


def compiler(flavour: str) -> str:
    return _mpich("mpicc") if flavour == "mpich" else "mpicc"


class Mpirun(RankLauncher):
    """Open MPI's mpirun or MPICH's mpiexec, hosts and slots stated explicitly, each rank bound to a core."""

    name = "mpirun"
    summary = "mpirun (Open MPI) / mpiexec (MPICH) over the run's nodes"

    def command(self, flavour: str, hosts: Sequence[str], ranks_per_node: int, program: Sequence[str],
                time_limit: float | None = None) -> list[str]:
        n = str(len(hosts) * ranks_per_node)
        if flavour == "openmpi":
            return ["mpirun", "-np", n, "--host", ",".join(hosts), "--map-by", f"ppr:{ranks_per_node}:node",
                    "--bind-to", "core", "--oversubscribe", *program]
        if flavour == "mpich":
            return [_mpich("mpiexec"), "-n", n, "-ppn", str(ranks_per_node), "-hosts", ",".join(hosts),
                    "-bind-to", "core", *program]
        raise ValueError(f"unknown MPI flavour {flavour!r}")


RANK_LAUNCHERS: dict[str, RankLauncher] = {launcher.name: launcher for launcher in (Mpirun(), FluxRun())}
DEFAULT_RANK_LAUNCHER = "mpirun"
