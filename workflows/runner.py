"""The run command, top-down in one pass; each step is a module that does it fully, and calls only further down:

    preflight     the arguments to checked Settings, the variant, the partition's nodes (nothing submitted)
    parsl_config  the variant's Parsl Config (with Parsl's monitoring when asked for)
    session       this process prepared, Parsl loaded; after it every Slurm job of the run cancelled
    submission    every app submitted at once, each after what it needs
    stall         every app waited on under the stall watch; why each failed, one line each
    outputs       what the apps wrote, read back: the Outcome
    monitoring    (with --monitoring) the run's record in monitoring.db read back, its page screenshotted
    verify        the Outcome verified: the problems
    report        result.json, the summary and placement.png in the run directory
"""

from __future__ import annotations

import argparse
import sys
import time

from . import monitoring, outputs, parsl_config, preflight, report, session, stall, verify


def run(args: argparse.Namespace, name: str = "workflows") -> int:
    """The run command: 0 verified (with --command: every run exited 0, the probe verified), 1 not, 2 refused
    before anything was submitted, 130 interrupted."""
    try:
        checked = preflight.checked(args)
    except preflight.REFUSALS as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    s, variant = checked.settings, checked.variant
    if checked.monitoring_off:
        print(f"{name}: --monitoring: {checked.monitoring_off}; running without it", file=sys.stderr, flush=True)
    from . import submission  # Parsl, once the run is going to start

    started = time.time()
    try:
        config = parsl_config.config(s, variant, checked.monitored)
        with session.run_session(config, s, name) as loaded:
            submitted = submission.submit_all(s, variant, args.source.resolve())
            waited = stall.wait_all(submitted, s, variant.block_nodes(s), variant.block_watch(s, config))
        outcome = outputs.read(s, waited, config, variant, loaded.cancelled_jobs)
        recorded = (monitoring.after_run(s.run_dir, loaded.workflow_id, variant.job_records(s, config, outcome.runs),
                                         args.screenshot, name)
                    if checked.monitored else monitoring.disabled(checked.monitoring_off))
    except KeyboardInterrupt:
        print(f"{name}: interrupted; every Slurm job of this run was cancelled ({s.run_dir})", file=sys.stderr)
        return 130
    problems = verify.problems(s, outcome, checked.nodes) + variant.problems(s, outcome.block_samples)
    data = report.result(s, checked.label, outcome.runs, problems, time.time() - started,
                         report.facts(outcome, recorded, checked.nodes, s.run_dir),
                         commands=outcome.commands if s.command else None)
    path = report.write(s.run_dir, data)
    report.plot(data, s.run_dir / "placement.png")
    print(path if args.json else report.summary(data) + f"\nrun directory: {s.run_dir}")
    return 0 if data["verified"] else 1
