"""What a rank launcher is: turns (hosts, ranks per node, program) into one MPI run's command line.

The interface alone, so that each rank launcher can live with what it launches under
(workflows.launchers: mpirun; workflows.flux.rank_launcher: `flux run`) and the registry
(workflows.launchers.RANK_LAUNCHERS) imports them all without an import circle. Pure: imports fast on a node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class RankLauncher:
    """One way to start an MPI run of len(hosts) * ranks_per_node ranks."""

    name: ClassVar[str]
    summary: ClassVar[str]
    under_flux: ClassVar[bool] = False  # the block runs inside `flux start`
    stamps_ranks: ClassVar[bool] = False  # each rank writes the run's stamps (no stamps around the launch)

    def command(self, flavour: str, hosts: Sequence[str], ranks_per_node: int, program: Sequence[str],
                time_limit: float | None = None) -> list[str]:
        """time_limit: seconds after which the launcher's scheduler itself ends the run, where it has one
        (Flux); elsewhere the `timeout` around the launch ends it (workflows.submission.run_line)."""
        raise NotImplementedError
