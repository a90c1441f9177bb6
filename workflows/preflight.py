"""The run command's first step: its arguments to checked Settings, before anything is submitted.

Every refusal is one line (exit 2): the user's --command, the Settings themselves, the folders the nodes must
see, the variant and its rank launcher, --monitoring's needs; Slurm is asked last, for the partition's nodes.
What passes is a Checked: all that the later steps read, so none of them goes back to an earlier one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
from pathlib import Path

from . import command, environment, monitoring, settings, slurm, variants
from .settings import Settings, SettingsError
from .variants.base import Variant

REFUSALS = (SettingsError, command.CommandError, slurm.SlurmError, environment.LoadOrderError)


@dataclasses.dataclass(frozen=True)
class Checked:
    """A run that may start: its settings on the partition, the variant that runs it and what it is called."""

    settings: Settings
    nodes: dict[str, int]  # the partition's usable nodes, with the CPUs Slurm gives each
    variant: Variant
    label: str  # variants.label: `mpi`, `mpi/flux`
    monitored: bool  # --monitoring, where the variant supports it
    monitoring_off: str | None = None  # why --monitoring was asked for and is off


def settings_from(args: argparse.Namespace, nodes: dict[str, int], run_dir: Path) -> Settings:
    """Settings of the run command's arguments, on a partition of these nodes; --launcher defaults to the
    variant's first rank launcher, so the settings (and result.json) name the one that runs."""
    words = command.argv(args.user_command) if args.user_command is not None else ()
    use_spack = not args.no_spack and (bool(args.load) or shutil.which("spack") is not None)
    loads = tuple(args.load or environment.DEFAULT_LOADS) if use_spack else ()
    environment.check_order(loads)
    return Settings(
        variant=args.variant, run_dir=run_dir, repeats=args.repeats, nodes_per_run=args.nodes_per_run,
        cpus_per_node=min(nodes.values()), cluster_nodes=len(nodes), partition=args.partition,
        account=args.account, walltime=args.walltime, scheduler_options=args.scheduler_options,
        loads=loads, use_spack=use_spack, venv=environment.current_venv(), address=args.address,
        mpi=args.mpi, rank_launcher=args.launcher or variants.get(args.variant).rank_launchers[0],
        variant_options=variants.given_options(vars(args)),
        run_timeout=args.run_timeout, retries=args.retries, stall_timeout=args.stall_timeout,
        strategy_period=args.strategy_period, max_lost_blocks=args.max_lost_blocks,
        tag=settings.new_tag(), command=words, probe=args.probe)


def checked(args: argparse.Namespace) -> Checked:
    """The arguments and the variant's needs first (nothing contacted), then the partition from Slurm; the first
    problem found is raised (one of REFUSALS)."""
    run_dir = args.run_dir.absolute() if args.run_dir else settings.default_run_dir(args.variant)
    stand_in = {f"node{i}": 1 for i in range(max(1, args.nodes_per_run))}  # any partition the run fits
    s = settings_from(args, stand_in, run_dir)
    missing = settings.unseen_by_nodes(s, settings.python_prefixes(s), settings.PROJECT,
                                       settings.shared_paths(os.environ))
    variant = variants.checked(s)
    label = variants.label(s.variant, s.rank_launcher)
    missing = missing or variant.unavailable(s) or settings.missing_program(s.command, Path.cwd())
    if args.screenshot and not args.monitoring:
        missing = missing or "--screenshot needs --monitoring (it shows the run's parsl-visualize page)"
    if s.command and not s.probe and args.source.resolve() != settings.SOURCE:
        missing = missing or "--source is the hello world's: with --command it needs --probe (or leave --source out)"
    off = variant.monitoring_unsupported(s) if args.monitoring else None
    missing = missing or (monitoring.missing() if args.monitoring else None)
    if missing:
        raise SettingsError(missing)
    nodes = slurm.partition_nodes(args.partition)
    s = dataclasses.replace(s, cpus_per_node=min(nodes.values()), cluster_nodes=len(nodes))
    return Checked(s, nodes, variant, label, args.monitoring and not off, off)
