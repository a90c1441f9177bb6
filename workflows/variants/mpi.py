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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..flux import instance
from ..settings import Settings
from .base import Variant, concurrent_blocks, launch_in_block, parsl_config, rank_launcher, slurm_provider

if TYPE_CHECKING:
    from parsl.config import Config


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
                                  sbatch_options=instance.SBATCH_NO_KILL if under_flux else "")
        ex = MPIExecutor(label=self.name, address=s.address, provider=provider, mpi_launcher="mpiexec",
                         max_workers_per_block=concurrent_blocks(s), heartbeat_period=2,
                         heartbeat_threshold=12, worker_logdir_root=str(s.run_dir / "workers"))
        return parsl_config(s, ex)

    def run_command(self, s: Settings, binary: str) -> str:
        return launch_in_block(s, binary, "parsl")

    def run_resources(self, s: Settings) -> dict[str, Any] | None:
        return {"num_nodes": s.nodes_per_run, "ranks_per_node": s.cpus_per_node}

    def compile_resources(self, s: Settings) -> dict[str, Any] | None:
        return {"num_nodes": 1, "num_ranks": 1, "ranks_per_node": 1}

    def wrapper_stamps(self, s: Settings) -> bool:
        return not rank_launcher(s).stamps_ranks

    def unavailable(self, s: Settings) -> str | None:
        return instance.missing(bindings=False) if rank_launcher(s).under_flux else None

