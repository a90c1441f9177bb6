"""The run command: arguments to checked Settings, the workflow (workflows/workflow.py), its verification,
then result.json, the summary and placement.png in the run directory.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from . import lifecycle, monitoring, preflight, report, workflow
from .settings import Settings

MARKER = ".workflows-run"  # in every run directory: what `clean` removes


def run(args: argparse.Namespace, name: str = "workflows") -> int:
    """The run command: 0 verified (with --command: every run exited 0, the probe verified), 1 not, 2 refused
    before anything was submitted, 130 interrupted."""
    try:
        checked = preflight.checked(args)
    except preflight.REFUSALS as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    s, nodes, unsupported = checked.settings, checked.nodes, checked.monitoring_off
    if unsupported:
        print(f"{name}: --monitoring: {unsupported}; running without it", file=sys.stderr, flush=True)
    _prepare_process(s)
    started = time.time()
    try:
        outcome = workflow.execute(s, args.source.resolve(), checked.monitored, name)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; every Slurm job of this run was cancelled ({s.run_dir})", file=sys.stderr)
        return 130
    data = report.result(s, checked.label, outcome.runs,
                         outcome.problems(s, nodes) + checked.variant.problems(s, outcome.block_samples),
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
