"""FluxExecutor + SlurmProvider: one Flux instance per block, spanning all its nodes.

The block runs `srun --mpi=pmi2 flux start ...` across its nodes (one broker per node), and Flux
places each MPI run through parsl_resource_specification. FluxExecutor ignores worker_init, so the
loads go into its launch command, before `flux start`: the instance and every job inherit them,
with Flux's Python bindings on PYTHONPATH (found from the flux that runs, see fluxenv).
Flux runs every task of a job, so an MPI run's command is the MPI program itself, once per rank;
the instance's job shell binds each task to its own core (workflows/flux_shell_initrc.lua). The
executor is workflows.fluxexec's: each bash app's command is the Flux job itself (no Python in the
ranks); --flux-wrapper parsl keeps Parsl's own FluxExecutor, which runs its Python wrapper per rank.
The job and the srun that starts Flux carry --no-kill: a lost node is drained by Flux, not fatal.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import Settings
from . import fluxenv
from .base import Variant, concurrent_blocks, parsl_config, slurm_provider, worker_init

if TYPE_CHECKING:
    from parsl.config import Config

INITRC = Path(__file__).resolve().parent.parent / "flux_shell_initrc.lua"


def default_initrc(flux: str) -> Path:
    """Flux's own job-shell initrc, which ours sources after setting its options."""
    return Path(flux).resolve().parents[1] / "etc" / "flux" / "shell" / "initrc.lua"


def launch_cmd(s: Settings, flux: str, bindings: str | None = None) -> str:
    """FluxExecutor's launch command: the loads, Flux's bindings on PYTHONPATH, then `flux start`."""
    from parsl.executors import FluxExecutor

    lines = [*worker_init(s).splitlines(), f"export WORKFLOWS_FLUX_INITRC={shlex.quote(str(default_initrc(flux)))}"]
    if bindings:
        lines.append(f"export PYTHONPATH={shlex.quote(bindings)}${{PYTHONPATH:+:$PYTHONPATH}}")
    # FluxExecutor str.format()s the launch command: the shell's braces must survive that.
    env = "; ".join(lines).replace("{", "{{").replace("}", "}}")
    start = FluxExecutor.DEFAULT_LAUNCH_CMD.replace(
        "{flux} start", f"{{flux}} start -Sconf.shell_initrc={shlex.quote(str(INITRC))}")
    return f"{env}; {start}"


class Flux(Variant):
    name = "flux"
    summary = "FluxExecutor + SlurmProvider, one Flux instance per block"
    rank_launchers = ("flux",)  # FluxExecutor's jobspec: Flux starts every rank

    def block_nodes(self, s: Settings) -> int:
        return concurrent_blocks(s) * s.nodes_per_run

    def config(self, s: Settings) -> Config:
        from parsl.executors import FluxExecutor
        from parsl.launchers import SrunLauncher

        from ..fluxexec import DirectFluxExecutor

        provider = slurm_provider(s, nodes_per_block=self.block_nodes(s), blocks=(1, 0, 1),
                                  launcher=SrunLauncher(overrides=fluxenv.SRUN_OPTIONS),
                                  sbatch_options=fluxenv.SBATCH_NO_KILL)
        flux = fluxenv.flux_command() or "flux"
        executor = DirectFluxExecutor if s.flux_wrapper == "direct" else FluxExecutor
        ex = executor(label=self.name, provider=provider, working_dir=str(s.run_dir / "flux"),
                      flux_path=flux, launch_cmd=launch_cmd(s, flux, fluxenv.bindings_path(flux)))
        return parsl_config(s, ex)

    def run_command(self, s: Settings, binary: str) -> str:
        """Flux starts every rank itself (PMI from the instance, bound by the job shell): the program alone."""
        return shlex.quote(binary)

    def run_resources(self, s: Settings) -> dict[str, Any] | None:
        return {"num_tasks": s.ranks_per_run, "num_nodes": s.nodes_per_run, "cores_per_task": 1}

    def compile_resources(self, s: Settings) -> dict[str, Any] | None:
        return {"num_tasks": 1, "num_nodes": 1, "cores_per_task": 1}

    def prepare(self, s: Settings) -> None:
        fluxenv.activate_bindings()  # FluxExecutor imports flux.job here, from the path its instance reports

    def unavailable(self, s: Settings) -> str | None:
        return fluxenv.missing(bindings=True)

    def monitoring_unsupported(self, rank_launcher: str) -> str | None:
        # Parsl's DFK wraps each task for monitoring only through the executor's remote_monitoring_radio;
        # FluxExecutor has none (HTEX and MPIExecutor send through their own channel), so every task would fail.
        return ("Parsl's monitoring does not support FluxExecutor (it has no remote_monitoring_radio: "
                "the DFK would refuse every task with RadioRequiredError)")
