"""FluxExecutor + SlurmProvider: one Flux instance per block, spanning all its nodes.

The block runs `srun --mpi=pmi2 flux start ...` across its nodes (one broker per node), and Flux
places each MPI run through parsl_resource_specification. FluxExecutor ignores worker_init, so the
loads go into its launch command, before `flux start`: the instance and every job inherit them.
Flux runs every task of a job, so an MPI run's command is the MPI program itself, once per rank.
"""

from __future__ import annotations

import shutil

from parsl.config import Config
from parsl.executors import FluxExecutor
from parsl.launchers import SrunLauncher

from ..settings import Settings
from . import launch_in_block, slurm_provider, worker_init

HOW_TO_GET = ("flux not found on PATH: build the Spack environment (scripts/build-env.sh) and "
              "`spack load flux-sched`, or use another variant")


def launch_cmd(s: Settings) -> str:
    env = "; ".join(worker_init(s).splitlines())
    # FluxExecutor str.format()s the launch command: the shell's braces must survive that.
    return env.replace("{", "{{").replace("}", "}}") + "; " + FluxExecutor.DEFAULT_LAUNCH_CMD


def config(s: Settings) -> Config:
    nodes = min(s.concurrent_runs, s.repeats) * s.nodes_per_run
    provider = slurm_provider(s, nodes_per_block=nodes, init_blocks=1, min_blocks=0, max_blocks=1,
                              launcher=SrunLauncher(overrides="--mpi=pmi2"))
    ex = FluxExecutor(label="flux", provider=provider, working_dir=str(s.run_dir / "flux"),
                      flux_path=shutil.which("flux"), launch_cmd=launch_cmd(s))
    return Config(executors=[ex], run_dir=str(s.run_dir / "runinfo"), retries=s.retries,
                  strategy_period=s.strategy_period)


def run_command(s: Settings, binary: str) -> str:
    """Flux starts every rank itself (PMI from the instance): each binds to its own CPU and runs the program."""
    return launch_in_block(s, binary, "flux")


def run_resources(s: Settings) -> dict | None:
    return {"num_tasks": s.ranks_per_run, "num_nodes": s.nodes_per_run, "cores_per_task": 1}


def compile_resources(s: Settings) -> dict | None:
    return {"num_tasks": 1, "num_nodes": 1, "cores_per_task": 1}
