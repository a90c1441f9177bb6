"""The workflow itself: compile the MPI hello world once, then R MPI runs as Parsl apps, waited on under the
stall watch; or R runs of the user's own program (--command), after the hello world's with --probe. What came
of it is an Outcome: the runs as their outputs show them, why runs failed, and the facts result.json keeps.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from . import command, lifecycle, monitoring, placement, stall, variants
from .launchers import compiler
from .settings import SOURCE, Settings
from .variants.base import Variant

COMPILE = -1  # the compile's index among the failures
COMMAND_WRAPPER = "command.sh"  # in the run directory: what each rank of the user's program runs (workflows/command.py)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A finished workflow, before verification."""

    runs: list[placement.Run]  # every hello world run, by index, parsed from its output (no ranks where it wrote none)
    errors: dict[int, str]  # why apps failed, one line each, by run index; COMPILE for the compile
    block_samples: list[tuple[float, int]]  # (time, block jobs in squeue), sampled while it ran
    cancelled_jobs: list[str]  # the run's Slurm jobs still there at the end, cancelled
    monitoring: dict[str, Any]  # monitoring.facts() of a monitored run, else monitoring.disabled()
    commands: list[command.CommandRun] = dataclasses.field(default_factory=list)  # the user's program's runs
    command_errors: dict[int, str] = dataclasses.field(default_factory=dict)  # why they failed, by run index
    lost_blocks: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # lost_block_facts()

    def problems(self, s: Settings, cpus_by_node: Mapping[str, int]) -> list[str]:
        """The hello world's (each failure, then what placement finds wrong with the runs that completed),
        as the probe's when a command ran; then each failed run of the command."""
        hello = self._hello_problems(s, cpus_by_node) if not s.command or s.probe else []
        if not s.command:
            return hello
        failed = [self.command_errors[i] for i in sorted(self.command_errors)]
        return [f"probe: {p}" for p in hello] + failed + command.problems(self.commands)

    def _hello_problems(self, s: Settings, cpus_by_node: Mapping[str, int]) -> list[str]:
        completed = [] if COMPILE in self.errors else [r for r in self.runs if r.index not in self.errors]
        return [self.errors[i] for i in sorted(self.errors)] + placement.verify(
            completed, repeats=None if self.errors else s.repeats, nodes_per_run=s.nodes_per_run,
            cpus_by_node=cpus_by_node)

    def facts(self) -> dict[str, Any]:
        """What result.json records of the run beside its settings and runs."""
        timed = self.commands or self.runs
        return {"block_samples": self.block_samples, "cancelled_jobs": self.cancelled_jobs,
                "failed_runs": sorted(self.command_errors if self.commands else self.errors),
                "max_concurrent_runs": placement.max_concurrency(timed), "monitoring": dict(self.monitoring),
                "lost_blocks": self.lost_blocks}


def execute(s: Settings, source: Path = SOURCE, monitored: bool = False, name: str = "workflows") -> Outcome:
    """Run the workflow; every Slurm job it submitted is cancelled when it ends, however it ends.

    The hello world's runs, or with s.command the user's program's (after the hello world's with s.probe).
    monitored: Parsl's MonitoringHub records the run in RUN_DIR/monitoring.db (its processes end with the DFK).
    name prefixes what is said on stderr on the way out.
    """
    variant = variants.get(s.variant)
    out = s.run_dir / "outputs"
    shutil.rmtree(out, ignore_errors=True)  # bash apps append: a reused run directory starts clean
    out.mkdir(parents=True)
    variant.prepare(s)
    config = variant.config(s)
    sampler = stall.BlockSampler(s.tag, s.partition, variant.block_nodes(s), on_lost=variant.block_watch(s, config))
    if monitored:
        config.monitoring = monitoring.hub(s)
    hello = not s.command or s.probe
    with lifecycle.parsl_loaded(config, s.tag, name) as session, sampler:
        errors = _run_apps(s, variant, source, out, sampler) if hello else {}
        exits, command_errors = _run_command(s, variant, out, sampler, bool(errors)) if s.command else ({}, {})
    runs = [_parsed(s.run_dir, out / f"run-{i}.out", i) for i in range(s.repeats)] if hello else []
    commands = [_parsed_command(s.run_dir, out, i, exits.get(i)) for i in range(s.repeats)] if s.command else []
    if monitored:  # Parsl has closed the database: our own table of the run's Flux jobs goes in now
        jobs = variant.job_records(s, config, runs)
        monitoring.record_jobs(monitoring.database(s.run_dir), session.workflow_id, jobs)
    facts = monitoring.facts(s.run_dir, session.workflow_id) if monitored else monitoring.disabled()
    handler = config.retry_handler
    lost = lost_block_facts([b.as_dict() for b in sampler.lost], getattr(handler, "lost", []),
                            variant.lost_blocks(config), runs, s.run_dir)
    return Outcome(runs, errors, sampler.samples, session.cancelled_jobs, facts, commands, command_errors, lost)


def lost_block_facts(seen: list[dict[str, Any]], retried: list[tuple[float, str, str]], replaced: list[dict[str, Any]],
                     runs: list[placement.Run], run_dir: Path) -> list[dict[str, Any]]:
    """One record per lost block: its job, first node, when, what was done, the runs resubmitted and where
    they ran. seen: the stall watch's (mpi); retried: tasks Parsl retried at no cost (when, host, stdout); replaced: the
    flux executor's own records (stdout paths of the jobs it resubmitted)."""
    by_output = {str(run_dir / r.output): r for r in runs}

    def record(job: str, node: str, at: float, how: str, outputs: list[str], replacement: Any) -> dict[str, Any]:
        again = sorted({by_output[o].index for o in outputs if o in by_output})
        return {"job": job, "node": node, "at": at, "how": how, "resubmitted": again,
                "ran_on": {str(i): runs[i].nodes for i in again}, "replacement": replacement}

    records = [record(b["job_id"], b["host"], b["at"], b["reason"], b["resubmitted"], b["replacement"])
               for b in replaced]
    seen = sorted((b for b in seen if b["job"] not in {r["job"] for r in records}), key=lambda b: b["at"])
    # a task lost with its pool goes with the loss of its pool's host, else the last one seen before Parsl
    # reported it (its heartbeats stop being awaited 12 s later, maybe after a later loss)
    owner = [next((i for i, b in enumerate(seen) if b["host"] == host),
                  max([i for i, b in enumerate(seen) if b["at"] <= at] or [0])) for at, host, _ in retried]
    outputs = [[o for (_, _, o), i in zip(retried, owner, strict=True) if i == n] for n in range(len(seen))]
    records += [record(b["job"], b["host"], b["at"], b["action"], outs, None)
                for b, outs in zip(seen, outputs, strict=True)]
    return sorted(records, key=lambda r: r["at"])


def scripts_on_path() -> None:
    """Parsl starts interchange.py from PATH: this interpreter's scripts must be found even unactivated."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def _run_apps(s: Settings, variant: Variant, source: Path, out: Path, sampler: stall.BlockSampler) -> dict[int, str]:
    """The compile, then every run; a failed run is reported, the others still run. Why each failed, by index."""
    from . import apps

    binary = str(s.run_dir / "mpi_hello")
    line = apps.compile_line(compiler(s.mpi), str(source), binary)
    compiled = apps.compile_mpi(line, stdout=str(out / "compile.out"), stderr=str(out / "compile.err"),
                                **_spec(variant.compile_resources(s)))
    failed = stall.wait({COMPILE: compiled}, sampler, s.stall_timeout)
    if failed:
        see = f" (see {out / 'compile.err'})" if (out / "compile.err").exists() else ""
        return {COMPILE: _failure("compiling the MPI program", failed[COMPILE], s.run_timeout) + see}
    futures = _submit(s, variant, binary, out, "run")
    return {i: _failure(f"run {i}", err, s.run_timeout)
            for i, err in sorted(stall.wait(futures, sampler, s.stall_timeout).items())}


def _run_command(s: Settings, variant: Variant, out: Path, sampler: stall.BlockSampler,
                 probe_failed: bool) -> tuple[dict[int, int | None], dict[int, str]]:
    """Every run of the user's program (none when the probe failed): each one's exit status, and why each failed."""
    if probe_failed:
        return {}, {i: f"run {i} not started: the probe (the hello world) failed" for i in range(s.repeats)}
    wrapper = command.write_wrapper(s.run_dir / COMMAND_WRAPPER, s.command, Path.cwd())
    futures = _submit(s, variant, str(wrapper), out, "command")
    failed = stall.wait(futures, sampler, s.stall_timeout)
    exits = {i: _exit_status(failed.get(i)) for i in futures}
    return exits, {i: _failure(f"run {i}", err, s.run_timeout, see=f"outputs/command-{i}.err")
                   for i, err in sorted(failed.items())}


def _submit(s: Settings, variant: Variant, program: str, out: Path, stem: str) -> dict[int, Future]:
    """Every run of program with the variant's launch line and resources, outputs in out/STEM-I.out and .err."""
    from . import apps

    line = apps.run_line(variant.run_command(s, program), s.run_timeout, stamped=variant.wrapper_stamps(s))
    return {i: apps.mpi_run(line, stdout=str(out / f"{stem}-{i}.out"), stderr=str(out / f"{stem}-{i}.err"),
                            walltime=s.run_timeout + 30, **_spec(variant.run_resources(s)))
            for i in range(s.repeats)}


def _spec(resources: dict | None) -> dict:
    return {} if resources is None else {"parsl_resource_specification": resources}


def _parsed(run_dir: Path, path: Path, index: int) -> placement.Run:
    text = path.read_text(errors="replace") if path.exists() else ""
    return placement.parse(index, str(path.relative_to(run_dir)), text)


def _parsed_command(run_dir: Path, out: Path, index: int, exit_status: int | None) -> command.CommandRun:
    path = out / f"command-{index}.out"
    text = path.read_text(errors="replace") if path.exists() else ""
    rel = path.relative_to(run_dir)
    return command.parse(index, str(rel), str(rel.with_suffix(".err")), text, exit_status)


def _exit_status(err: BaseException | None) -> int | None:
    """A run's exit status: 0, the command's own, or None when it never reported one (stalled, its worker lost)."""
    from parsl.app.errors import BashExitFailure

    if err is None:
        return 0
    return err.exitcode if isinstance(err, BashExitFailure) else None


def _failure(what: str, err: BaseException, timeout: float, see: str | None = None) -> str:
    """One line for a failed app: `what` is 'run 3' or 'compiling the MPI program'; see: the run's stderr."""
    from parsl.app.errors import BashExitFailure

    from .apps import TIMED_OUT

    if isinstance(err, stall.Stalled):
        return f"{what} {err}"
    if isinstance(err, BashExitFailure) and err.exitcode == TIMED_OUT:
        return f"{what} timed out after {timeout:g} s (--run-timeout)"
    if isinstance(err, BashExitFailure) and see:
        return f"{what} exited {err.exitcode} (see {see})"
    return f"{what} failed: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
