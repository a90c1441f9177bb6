"""`flux run` as a rank launcher (mpi --launcher flux): each MPI run a job of the block's Flux instance.

Pure, as every rank launcher: no Parsl, no Flux bindings, so it imports fast on a node.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence

from ..placement import stamp
from ..rank_launcher import RankLauncher

KILL_AFTER = 5  # seconds between a rank's SIGTERM and its SIGKILL at the run's time limit
BACKSTOP = 10  # seconds more before Flux's own limit ends the job


class FluxRun(RankLauncher):
    """`flux run` in the block's Flux instance: Flux's scheduler places the run on nodes of its own, a core per rank."""

    name = "flux"
    summary = "flux run -N K -n R in a Flux instance started in the block"
    under_flux = True
    stamps_ranks = True

    def command(self, flavour: str, hosts: Sequence[str], ranks_per_node: int, program: Sequence[str],
                time_limit: float | None = None) -> list[str]:
        """time_limit: each rank ends its program then (`timeout`, SIGKILL 5 s later: a rank deaf to SIGTERM
        too), and Flux ends the job itself a little later (`flux run -t`), in case a rank's `timeout` was
        killed. Flux signals a job's tasks, not their children: the rank's `timeout` is what reaches the
        program; and a `flux run` killed (by the `timeout` around the launch) leaves its job running."""
        # Every rank stamps the job's start and end itself: Flux frees a job's nodes before the worker's
        # wrapper could stamp, and the next run may take them at once (its interval must be the job's).
        timed = f"timeout --kill-after={KILL_AFTER} {time_limit:g} " if time_limit is not None else ""
        ranked = f"{stamp('start')}; {timed}{shlex.join(program)}; rc=$?; {stamp('end')}; exit $rc"
        limit = ["-t", f"{math.ceil(time_limit) + KILL_AFTER + BACKSTOP}s"] if time_limit is not None else []
        return ["flux", "run", "-N", str(len(hosts)), "-n", str(len(hosts) * ranks_per_node), "--exclusive",
                "--cores-per-task=1", *limit,
                "-o", "cpu-affinity=per-task", "sh", "-c", ranked]
