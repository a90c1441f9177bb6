"""Parsl's MPIExecutor: one block of nodes shared by many MPI runs that never overlap.

MPIExecutor hands each task a disjoint node list (PARSL_MPI_NODELIST) from the block. Parsl's
own mpiexec prefix uses Hydra flags (-ppn, -hosts) that Open MPI rejects, so workflows.launch
builds the line with one of workflows/launchers.py:
- mpirun (default): Open MPI's mpirun / MPICH's mpiexec on the task's nodes. Not srun: concurrent
  `srun --mpi=pmix` steps on disjoint nodes of one allocation hang now and then (Slurm 22.05).
- flux: the block runs inside `flux start` (one broker per node, started by srun), and each run is
  `flux run -N K -n R`: Flux's scheduler places it and binds each rank to a core. The job and its
  srun carry --no-kill, so a node lost under the block is drained by Flux and the rest go on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..settings import Settings
from . import fluxenv
from .base import Variant, concurrent_blocks, launch_in_block, parsl_config, rank_launcher, slurm_provider

if TYPE_CHECKING:
    from parsl.config import Config
    from parsl.launchers import SimpleLauncher


def flux_start_launcher() -> SimpleLauncher:
    """MPIExecutor insists on a SimpleLauncher; this one starts the worker pool as a Flux instance's program."""
    from parsl.launchers import SimpleLauncher

    class FluxStart(SimpleLauncher):
        def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
            script = f"{script_dir or '.'}/flux_block_$SLURM_JOB_ID.sh"
            # Flux drops SLURM_* from its initial program's environment: MPIExecutor needs the node list
            # (read through scontrol, which needs the configuration's path where it is not the default)
            keep = "${SLURM_CONF:+SLURM_CONF=$SLURM_CONF} SLURM_NODELIST=$SLURM_NODELIST SLURM_JOB_ID=$SLURM_JOB_ID"
            start = fluxenv.start_command(nodes_per_block, f"env {keep} bash {script}")
            return f"cat << 'FLUX_BLOCK_EOF' > {script}\n{command}\nFLUX_BLOCK_EOF\n{start}\n"

    return FluxStart()


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
        provider_launcher = flux_start_launcher() if under_flux else SimpleLauncher()
        provider = slurm_provider(s, nodes_per_block=self.block_nodes(s), blocks=(1, 0, 1), launcher=provider_launcher,
                                  sbatch_options=fluxenv.SBATCH_NO_KILL if under_flux else "")
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
        return fluxenv.missing(bindings=False) if rank_launcher(s).under_flux else None

