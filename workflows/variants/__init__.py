"""One module per executor variant: each a pure `config(settings)` plus how its apps launch MPI.

A variant module defines:
  config(s) -> parsl.Config
  run_command(s, binary) -> str          the shell command of one MPI run
  run_resources(s) -> dict | None        parsl_resource_specification of one MPI run
  compile_resources(s) -> dict | None    the same for the compile app
"""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path
from types import ModuleType

from parsl.launchers.base import Launcher
from parsl.providers import SlurmProvider

from .. import environment
from ..settings import Settings

PROJECT = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def worker_init(s: Settings) -> str:
    """The ordered loads (miniconda3 last), then the project on PYTHONPATH for workflows.launch."""
    lines = environment.shell_lines(s.loads, spack=s.use_spack, venv=s.venv)
    lines.append(f"export PYTHONPATH={shlex.quote(str(PROJECT))}${{PYTHONPATH:+:$PYTHONPATH}}")
    return "\n".join(lines)


def slurm_provider(s: Settings, *, nodes_per_block: int, init_blocks: int, min_blocks: int,
                   max_blocks: int, launcher: Launcher, parallelism: float = 1.0) -> SlurmProvider:
    """A SlurmProvider whose every block carries this run's --comment, so cleanup finds it."""
    options = f"#SBATCH --comment={s.tag}\n" + s.scheduler_options
    return SlurmProvider(
        partition=s.partition or "", account=s.account, nodes_per_block=nodes_per_block,
        init_blocks=init_blocks, min_blocks=min_blocks, max_blocks=max_blocks, parallelism=parallelism,
        walltime=s.walltime, scheduler_options=options, worker_init=worker_init(s), launcher=launcher,
        exclusive=True, cmd_timeout=30)


def launch_in_block(s: Settings, binary: str, source: str) -> str:
    """The command that launches one MPI run from a worker (see workflows/launch.py)."""
    return f"python -m workflows.launch --source {source} --mpi {s.mpi} -- {shlex.quote(binary)}"
