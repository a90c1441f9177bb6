"""FluxExecutor + SlurmProvider: one Flux instance per block, spanning all its nodes.

The block runs `srun --mpi=pmi2 flux start ...` across its nodes (one broker per node), and Flux
places each MPI run through parsl_resource_specification. FluxExecutor ignores worker_init, so the
loads go into its launch command, before `flux start`: the instance and every job inherit them.
Flux runs every task of a job, so an MPI run's command is the MPI program itself, once per rank;
the instance's job shell binds each task to its own core (workflows/flux_shell_initrc.lua).
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from parsl.config import Config
from parsl.executors import FluxExecutor
from parsl.launchers import SrunLauncher

from ..settings import Settings
from . import slurm_provider, worker_init

HOW_TO_GET = ("flux not found on PATH: build the Spack environment (scripts/build-env.sh) and "
              "`spack load flux-sched`, or use another variant")


INITRC = Path(__file__).resolve().parent.parent / "flux_shell_initrc.lua"


def default_initrc(flux: str) -> Path:
    """Flux's own job-shell initrc, which ours sources after setting its options."""
    return Path(flux).resolve().parents[1] / "etc" / "flux" / "shell" / "initrc.lua"


def launch_cmd(s: Settings, flux: str) -> str:
    lines = [*worker_init(s).splitlines(), f"export WORKFLOWS_FLUX_INITRC={shlex.quote(str(default_initrc(flux)))}"]
    # FluxExecutor str.format()s the launch command: the shell's braces must survive that.
    env = "; ".join(lines).replace("{", "{{").replace("}", "}}")
    start = FluxExecutor.DEFAULT_LAUNCH_CMD.replace(
        "{flux} start", f"{{flux}} start -Sconf.shell_initrc={shlex.quote(str(INITRC))}")
    return f"{env}; {start}"


def config(s: Settings) -> Config:
    nodes = min(s.concurrent_runs, s.repeats) * s.nodes_per_run
    provider = slurm_provider(s, nodes_per_block=nodes, init_blocks=1, min_blocks=0, max_blocks=1,
                              launcher=SrunLauncher(overrides="--mpi=pmi2"))
    flux = shutil.which("flux") or "flux"
    ex = FluxExecutor(label="flux", provider=provider, working_dir=str(s.run_dir / "flux"),
                      flux_path=flux, launch_cmd=launch_cmd(s, flux))
    return Config(executors=[ex], run_dir=str(s.run_dir / "runinfo"), retries=s.retries,
                  strategy_period=s.strategy_period)


def run_command(s: Settings, binary: str) -> str:
    """Flux starts every rank itself (PMI from the instance, bound by the job shell): the program alone."""
    return shlex.quote(binary)


def run_resources(s: Settings) -> dict | None:
    return {"num_tasks": s.ranks_per_run, "num_nodes": s.nodes_per_run, "cores_per_task": 1}


def compile_resources(s: Settings) -> dict | None:
    return {"num_tasks": 1, "num_nodes": 1, "cores_per_task": 1}
