"""Parsl's MPIExecutor: one block of nodes shared by many MPI runs that never overlap.

MPIExecutor hands each task a disjoint node list (PARSL_MPI_NODELIST) from the block. Parsl's
own mpiexec prefix uses Hydra flags (-ppn, -hosts) that Open MPI rejects, so workflows.launch
builds the line with a rank launcher (workflows/launchers.py):
- mpirun (default): Open MPI's mpirun / MPICH's mpiexec on the task's nodes. Not srun: concurrent
  `srun --mpi=pmix` steps on disjoint nodes of one allocation hang now and then (Slurm 22.05).
- flux: the block runs inside `flux start` (one broker per node, started by srun: workflows.flux.instance),
  and each run is `flux run -N K -n R` (workflows.flux.rank_launcher): Flux's scheduler places it and
  binds each rank to a core. The job and its srun carry --no-kill, so a node lost under the block is
  drained by Flux and the rest go on.
A block that loses its first node (where the worker pool runs) is replaced: the stall watch sees it within
seconds and block_watch() sizes the next block to the usable nodes and cancels the lost one, Parsl's
strategy (which reads the block states every few seconds) asks for the new block, and the tasks lost with
the pool (ManagerLost) are retried there at no cost to --retries (base.InfrastructureRetries).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..flux import instance
from ..settings import Settings
from .base import Variant, concurrent_blocks, launch_in_block, parsl_config, rank_launcher, refit, slurm_provider

if TYPE_CHECKING:
    from parsl.config import Config

    from ..placement import Run


class Mpi(Variant):
    name = "mpi"
    summary = "MPIExecutor + SlurmProvider, one block shared by all runs"
    rank_launchers = ("mpirun", "flux")

    def block_nodes(self, s: Settings) -> int:
        return concurrent_blocks(s) * s.nodes_per_run

    def config(self, s: Settings) -> Config:
        from parsl.executors import MPIExecutor
        from parsl.launchers import SimpleLauncher

        under_flux = rank_launcher(s).under_flux
        provider_launcher = instance.block_launcher() if under_flux else SimpleLauncher()
        provider = slurm_provider(s, nodes_per_block=self.block_nodes(s), blocks=(1, 0, 1), launcher=provider_launcher,
                                  sbatch_options=instance.SBATCH_NO_KILL if under_flux else "", polled=True)
        ex = MPIExecutor(label=self.name, address=s.address, provider=provider, mpi_launcher="mpiexec",
                         max_workers_per_block=concurrent_blocks(s), heartbeat_period=2,
                         heartbeat_threshold=12, worker_logdir_root=str(s.run_dir / "workers"),
                         block_error_handler=functools.partial(failed_blocks_beyond, s.max_lost_blocks))
        return parsl_config(s, ex)

    def block_watch(self, s: Settings, config: Config) -> Callable[[str, str], str] | None:
        executor: Any = config.executors[0]
        provider, dead = executor.provider, set()

        def replace(job: str, host: str) -> str:
            dead.add(host)
            next_block = refit(provider, dead, s, self.block_nodes(s))
            provider.cancel([job])  # Parsl's provider marks it cancelled: the strategy asks for the next block
            return f"cancelled; {next_block}"

        return replace

    def run_command(self, s: Settings, binary: str) -> str:
        return launch_in_block(s, binary, "parsl")

    def run_resources(self, s: Settings) -> dict[str, Any] | None:
        return {"num_nodes": s.nodes_per_run, "ranks_per_node": s.cpus_per_node}

    def compile_resources(self, s: Settings) -> dict[str, Any] | None:
        return {"num_nodes": 1, "num_ranks": 1, "ranks_per_node": 1}

    def job_records(self, s: Settings, config: Config, runs: list[Run]) -> list[dict[str, Any]]:
        """Under --launcher flux, each run's last attempt: the nodes and CPUs its ranks reported from inside their
        Flux job, and the job's start and end as its ranks stamped them (Parsl's try rows name the worker's node).
        """
        if not rank_launcher(s).under_flux:
            return []
        return [{"stdout": str(s.run_dir / r.output), "nodes": r.nodes, "cores": len(r.ranks), "start": r.start,
                 "finish": r.end, "source": "ranks' output"} for r in runs if r.ranks]

    def wrapper_stamps(self, s: Settings) -> bool:
        return not rank_launcher(s).stamps_ranks

    def unavailable(self, s: Settings) -> str | None:
        return instance.missing(bindings=False) if rank_launcher(s).under_flux else None


def failed_blocks_beyond(most: int, executor: Any, status: dict[str, Any]) -> None:
    """MPIExecutor's block_error_handler: give up (as Parsl's own handler) once more than `most` blocks failed.

    Parsl's default gives up when every block failed, that is at the first block lost with its node.
    """
    from parsl.jobs.states import JobState

    failed = [s for s in status.values() if s.state in (JobState.FAILED, JobState.MISSING)]
    if len(failed) > most:
        from parsl.jobs.errors import TooManyJobFailuresError

        executor.set_bad_state_and_fail_all(TooManyJobFailuresError(
            f"{len(failed)} blocks failed, more than --max-lost-blocks {most}: "
            + "; ".join(str(s.message or s.state.name) for s in failed)))

