"""The run command: arguments to checked Settings, the workflow (workflows/workflow.py), its verification,
then result.json, the summary and placement.png in the run directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from . import command, environment, lifecycle, monitoring, report, settings, slurm, variants, workflow
from .settings import Settings, SettingsError

MARKER = ".workflows-run"  # in every run directory: what `clean` removes


def settings_from(args: argparse.Namespace, nodes: dict[str, int], run_dir: Path) -> Settings:
    """Settings of the run command's arguments, on a partition of these nodes; --launcher defaults to the
    variant's first rank launcher, so the settings (and result.json) name the one that runs."""
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
        tag=settings.new_tag(),
        command=command.argv(args.user_command) if args.user_command is not None else (), probe=args.probe)


def checked_settings(args: argparse.Namespace) -> tuple[Settings, dict[str, int]]:
    """Arguments and the variant's needs first (nothing contacted), then the partition from Slurm."""
    run_dir = args.run_dir.absolute() if args.run_dir else settings.default_run_dir(args.variant)
    stand_in = {f"node{i}": 1 for i in range(max(1, args.nodes_per_run))}  # any partition the run fits
    s = settings_from(args, stand_in, run_dir)
    unseen = settings.unseen_by_nodes(s, settings.python_prefixes(s), settings.PROJECT,
                                      settings.shared_paths(os.environ))
    if unseen:
        raise SettingsError(unseen)
    missing = variants.checked(s).unavailable(s)
    missing = missing or (command.missing_program(s.command, Path.cwd()) if s.command else None)
    if missing:
        raise SettingsError(missing)
    if args.screenshot and not args.monitoring:
        raise SettingsError("--screenshot needs --monitoring (it shows the run's parsl-visualize page)")
    if s.command and not s.probe and args.source.resolve() != workflow.SOURCE:
        raise SettingsError("--source is the hello world's: with --command it needs --probe (or leave --source out)")
    missing = monitoring.missing() if args.monitoring else None
    if missing:
        raise SettingsError(missing)
    nodes = slurm.partition_nodes(args.partition)
    return dataclasses.replace(s, cpus_per_node=min(nodes.values()), cluster_nodes=len(nodes)), nodes


def run(args: argparse.Namespace, name: str = "workflows") -> int:
    """The run command: 0 verified (with --command: every run exited 0, the probe verified), 1 not, 2 refused
    before anything was submitted, 130 interrupted."""
    try:
        s, nodes = checked_settings(args)
    except (SettingsError, command.CommandError, slurm.SlurmError, environment.LoadOrderError) as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    unsupported = (variants.get(s.variant).monitoring_unsupported(s)
                   if args.monitoring else None)
    if unsupported:
        print(f"{name}: --monitoring: {unsupported}; running without it", file=sys.stderr, flush=True)
    _prepare_process(s)
    started = time.time()
    try:
        outcome = workflow.execute(s, args.source.resolve(), args.monitoring and not unsupported, name)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; every Slurm job of this run was cancelled ({s.run_dir})", file=sys.stderr)
        return 130
    data = report.result(s, variants.label(s.variant, s.rank_launcher), outcome.runs,
                         outcome.problems(s, nodes) + variants.get(s.variant).problems(s, outcome.block_samples),
                         time.time() - started, {**outcome.facts(), "partition_nodes": sorted(nodes)},
                         commands=outcome.commands if s.command else None)
    if unsupported:
        data["monitoring"]["unsupported"] = unsupported
    if args.screenshot and outcome.monitoring["enabled"]:
        try:
            data["monitoring"]["screenshot"] = str(monitoring.screenshot(s.run_dir))
        except monitoring.MonitoringError as err:
            print(f"{name}: --screenshot: {err}", file=sys.stderr)
    path = report.write(s.run_dir, data)
    report.plot(data, s.run_dir / "placement.png")
    print(path if args.json else report.summary(data) + f"\nrun directory: {s.run_dir}")
    return 0 if data["verified"] else 1


def _prepare_process(s: Settings) -> None:
    """The run directory marked, Parsl's log and executor threads' tracebacks kept in it, SIGTERM as Ctrl-C."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    (s.run_dir / MARKER).touch()
    workflow.scripts_on_path()
    logging.getLogger("parsl").propagate = False  # Parsl's log goes to the run directory only
    lifecycle.log_thread_errors(s.run_dir / "thread-errors.log")
    lifecycle.interrupt_on_sigterm()  # a killed run cancels its jobs too
