"""Parsl's MPIExecutor: one block of nodes shared by many MPI runs that never overlap.

MPIExecutor hands each task a disjoint node list (PARSL_MPI_NODELIST) from the block. Parsl's
own mpiexec prefix uses Hydra flags (-ppn, -hosts) that Open MPI rejects, so workflows.launch
builds the line per MPI flavour. It uses mpirun, not srun: concurrent `srun --mpi=pmix` steps on
disjoint nodes of one allocation hang now and then (Slurm 22.05 PMIx sends to the first node).
"""

from __future__ import annotations

from parsl.config import Config
from parsl.executors import MPIExecutor
from parsl.launchers import SimpleLauncher

from ..settings import Settings
from . import launch_in_block, slurm_provider


def block_nodes(s: Settings) -> int:
    return min(s.concurrent_runs, s.repeats) * s.nodes_per_run


def config(s: Settings) -> Config:
    provider = slurm_provider(s, nodes_per_block=block_nodes(s), init_blocks=1, min_blocks=0,
                              max_blocks=1, launcher=SimpleLauncher())
    ex = MPIExecutor(label="mpi", address=s.address, provider=provider, mpi_launcher="mpiexec",
                     max_workers_per_block=block_nodes(s) // s.nodes_per_run, heartbeat_period=2,
                     heartbeat_threshold=12, worker_logdir_root=str(s.run_dir / "workers"))
    return Config(executors=[ex], run_dir=str(s.run_dir / "runinfo"), retries=s.retries,
                  strategy_period=s.strategy_period)


def run_command(s: Settings, binary: str) -> str:
    return launch_in_block(s, binary, "parsl")


def run_resources(s: Settings) -> dict | None:
    return {"num_nodes": s.nodes_per_run, "ranks_per_node": s.cpus_per_node}


def compile_resources(s: Settings) -> dict | None:
    return {"num_nodes": 1, "num_ranks": 1, "ranks_per_node": 1}
