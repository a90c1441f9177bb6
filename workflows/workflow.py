"""The workflow itself: compile the MPI program once, then R MPI runs as Parsl apps, waited on under the
stall watch. What came of it is an Outcome: the runs as their outputs show them, why runs failed, and the
facts result.json keeps.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import lifecycle, monitoring, placement, stall, variants
from .launchers import compiler
from .settings import Settings
from .variants.base import Variant

SOURCE = Path(__file__).resolve().parent / "mpi_hello.c"
COMPILE = -1  # the compile's index among the failures


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A finished workflow, before verification."""

    runs: list[placement.Run]  # every run, by index, parsed from its output (no ranks where it wrote none)
    errors: dict[int, str]  # why apps failed, one line each, by run index; COMPILE for the compile
    block_samples: list[tuple[float, int]]  # (time, block jobs in squeue), sampled while it ran
    cancelled_jobs: list[str]  # the run's Slurm jobs still there at the end, cancelled
    monitoring: dict[str, Any]  # monitoring.facts() of a monitored run, else monitoring.disabled()
    lost_blocks: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # lost_block_facts()

    def problems(self, s: Settings, cpus_by_node: Mapping[str, int]) -> list[str]:
        """Each failure, then what placement finds wrong with the runs that completed (they must still hold)."""
        completed = [] if COMPILE in self.errors else [r for r in self.runs if r.index not in self.errors]
        return [self.errors[i] for i in sorted(self.errors)] + placement.verify(
            completed, repeats=None if self.errors else s.repeats, nodes_per_run=s.nodes_per_run,
            cpus_by_node=cpus_by_node)

    def facts(self) -> dict[str, Any]:
        """What result.json records of the run beside its settings and runs."""
        return {"block_samples": self.block_samples, "cancelled_jobs": self.cancelled_jobs,
                "failed_runs": sorted(self.errors), "max_concurrent_runs": placement.max_concurrency(self.runs),
                "monitoring": dict(self.monitoring), "lost_blocks": self.lost_blocks}


def execute(s: Settings, source: Path = SOURCE, monitored: bool = False, name: str = "workflows") -> Outcome:
    """Run the workflow; every Slurm job it submitted is cancelled when it ends, however it ends.

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
    with lifecycle.parsl_loaded(config, s.tag, name) as session, sampler:
        errors = _run_apps(s, variant, source, out, sampler)
    runs = [_parsed(s.run_dir, out / f"run-{i}.out", i) for i in range(s.repeats)]
    if monitored:  # Parsl has closed the database: our own table of the run's Flux jobs goes in now
        jobs = variant.job_records(s, config, runs)
        monitoring.record_jobs(monitoring.database(s.run_dir), session.workflow_id, jobs)
    facts = monitoring.facts(s.run_dir, session.workflow_id) if monitored else monitoring.disabled()
    handler = config.retry_handler
    lost = lost_block_facts([b.as_dict() for b in sampler.lost], getattr(handler, "lost", []),
                            variant.lost_blocks(config), runs, s.run_dir)
    return Outcome(runs, errors, sampler.samples, session.cancelled_jobs, facts, lost)


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
    command = apps.run_line(variant.run_command(s, binary), s.run_timeout, stamped=variant.wrapper_stamps(s))
    futures = {i: apps.mpi_run(command, stdout=str(out / f"run-{i}.out"), stderr=str(out / f"run-{i}.err"),
                               walltime=s.run_timeout + 30, **_spec(variant.run_resources(s)))
               for i in range(s.repeats)}
    return {i: _failure(f"run {i}", err, s.run_timeout)
            for i, err in sorted(stall.wait(futures, sampler, s.stall_timeout).items())}


def _spec(resources: dict | None) -> dict:
    return {} if resources is None else {"parsl_resource_specification": resources}


def _parsed(run_dir: Path, path: Path, index: int) -> placement.Run:
    text = path.read_text(errors="replace") if path.exists() else ""
    return placement.parse(index, str(path.relative_to(run_dir)), text)


def _failure(what: str, err: BaseException, timeout: float) -> str:
    """One line for a failed app: `what` is 'run 3' or 'compiling the MPI program'."""
    from parsl.app.errors import BashExitFailure

    from .apps import TIMED_OUT

    if isinstance(err, stall.Stalled):
        return f"{what} {err}"
    if isinstance(err, BashExitFailure) and err.exitcode == TIMED_OUT:
        return f"{what} timed out after {timeout:g} s (--run-timeout)"
    return f"{what} failed: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
