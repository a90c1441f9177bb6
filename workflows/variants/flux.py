"""FluxExecutor + SlurmProvider: one Flux instance per block, spanning all its nodes.

The block runs `srun --mpi=pmi2 flux start ...` across its nodes (one broker per node), and Flux
places each MPI run through parsl_resource_specification, on nodes of its own (exclusive). The instance has
the CPUs Slurm allocated on each node, not the cores hwloc finds (workflows.flux.allocation). FluxExecutor
ignores worker_init, so the loads go into its launch command, before `flux start` (workflows.flux.instance).
Flux runs every task of a job, so an MPI run's command is the MPI program itself, once per rank. The executor is
workflows.flux's DirectFluxExecutor (each bash app's command is the Flux job itself, no Python in the
ranks); --flux-wrapper parsl keeps Parsl's own FluxExecutor, which runs its Python wrapper per rank.
The job and the srun that starts Flux carry --no-kill: a lost node is drained by Flux, not fatal.
A lost first node (Flux's rank 0) loses the instance: DirectFluxExecutor cancels its block, asks the provider
for a new one (refit: the usable nodes but the dead ones) and submits the unfinished runs to its instance.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from .. import slurm
from ..flux import instance
from ..settings import Settings
from .base import Option, Variant, concurrent_blocks, parsl_config, refit, slurm_provider, worker_init

if TYPE_CHECKING:
    from parsl.config import Config
    from parsl.executors import FluxExecutor

    from ..placement import Run


def executor_class(flux_wrapper: str) -> type[FluxExecutor]:
    """DirectFluxExecutor, or Parsl's own for --flux-wrapper parsl (then nothing of the direct path is imported)."""
    if flux_wrapper == "direct":
        from ..flux.executor import DirectFluxExecutor

        return DirectFluxExecutor
    from parsl.executors import FluxExecutor

    return FluxExecutor


class Flux(Variant):
    name = "flux"
    summary = "FluxExecutor + SlurmProvider, one Flux instance per block"
    rank_launchers = ("flux",)  # FluxExecutor's jobspec: Flux starts every rank
    options = (Option("--flux-wrapper", "flux_wrapper", ("direct", "parsl"),
                      "the flux variant's bash apps: direct (the command is the Flux job) or parsl (Parsl's "
                      "execute_parsl_task.py in every rank, as stock FluxExecutor)"),)

    def block_nodes(self, s: Settings) -> int:
        return concurrent_blocks(s) * s.nodes_per_run

    def config(self, s: Settings) -> Config:
        from parsl.launchers import SrunLauncher

        provider = slurm_provider(s, nodes_per_block=self.block_nodes(s), blocks=(1, 0, 1),
                                  launcher=SrunLauncher(overrides=instance.SRUN_OPTIONS),
                                  sbatch_options=instance.SBATCH_NO_KILL)
        flux = instance.flux_command() or "flux"
        wrapper = self.option(s, "flux_wrapper")
        kw: dict[str, Any] = {}
        if wrapper == "direct":
            nodes = self.block_nodes(s)
            kw = {"max_lost_blocks": s.max_lost_blocks, "alive": slurm.SlurmdProbe().alive,
                  "refit": lambda provider, lost: refit(provider, {b.host for b in lost if b.host}, s, nodes)}
        ex = executor_class(wrapper)(
            label=self.name, provider=provider, working_dir=str(s.run_dir / "flux"), flux_path=flux,
            launch_cmd=instance.launch_cmd(worker_init(s), flux, instance.bindings_path(flux), str(s.run_dir / "flux")),
            **kw)
        return parsl_config(s, ex)

    def lost_blocks(self, config: Config) -> list[dict[str, Any]]:
        lost = getattr(config.executors[0], "lost_blocks", [])
        return [b.as_dict() for b in lost]

    def run_command(self, s: Settings, binary: str) -> str:
        """Flux starts every rank itself (PMI from the instance, bound by the job shell): the program alone."""
        return shlex.quote(binary)

    def run_resources(self, s: Settings) -> dict[str, Any] | None:
        """Every CPU of its nodes (one rank each), the nodes its own: exclusive (DirectFluxExecutor's jobspec)."""
        return {"num_tasks": s.ranks_per_run, "num_nodes": s.nodes_per_run, "cores_per_task": 1, "exclusive": True}

    def compile_resources(self, s: Settings) -> dict[str, Any] | None:
        return {"num_tasks": 1, "num_nodes": 1, "cores_per_task": 1}

    def prepare(self, s: Settings) -> None:
        instance.activate_bindings()  # FluxExecutor imports flux.job here, from the path its instance reports

    def unavailable(self, s: Settings) -> str | None:
        return instance.missing(bindings=True)

    def monitoring_unsupported(self, s: Settings) -> str | None:
        """DirectFluxExecutor reports its jobs from Flux's events (workflows.flux.job_events); Parsl's own cannot.

        Parsl's DFK wraps each task for monitoring only through the executor's remote_monitoring_radio;
        FluxExecutor has none (HTEX and MPIExecutor send through their own channel), so every task would fail.
        """
        if self.option(s, "flux_wrapper") == "direct":
            return None
        return ("Parsl's monitoring does not support Parsl's own FluxExecutor (--flux-wrapper parsl: it has no "
                "remote_monitoring_radio, the DFK would refuse every task with RadioRequiredError)")

    def job_records(self, s: Settings, config: Config, runs: list[Run]) -> list[dict[str, Any]]:
        """What DirectFluxExecutor saw in its instances' job journals (workflows.flux.job_events)."""
        return list(getattr(config.executors[0], "job_records", []))
