"""The run's fourth step: what its apps wrote, read back from the outputs (pure but for reading the files).

The hello world's rank lines, the lines the user's program's wrapper writes before each rank (submission.wrapper),
the start and end stamps of each attempt. What came of the run is an Outcome:
the runs as their outputs show them and why runs failed, before verification (workflows/placement.py).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .placement import Run, attempts, parse
from .stall import Waited

if TYPE_CHECKING:
    from parsl.config import Config

    from .settings import Settings
    from .variants.base import Variant


# The line submission.wrapper writes before each rank of the user's program: its rank, node and CPUs.
WHERE = re.compile(r"^# rank (\d+|\?) (\S+) (\S+)\s*$")


@dataclasses.dataclass(frozen=True)
class Place:
    """Where one rank ran: its node and the CPUs it was allowed (one when the launcher bound it)."""

    rank: int | None  # None: the launcher set no rank variable the wrapper knows
    host: str
    cpus: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class CommandRun:
    index: int
    output: str  # stdout, relative to the run directory
    errors: str  # stderr, relative to the run directory
    places: tuple[Place, ...]  # the last attempt's ranks, by rank
    start: float | None
    end: float | None
    exit_status: int | None  # the last attempt's; None when none was reported (the run stalled, its worker was lost)
    failed_attempts: tuple[tuple[str, ...], ...] = ()  # the nodes of each earlier, retried attempt

    @property
    def nodes(self) -> list[str]:
        return sorted({p.host for p in self.places})


def cpu_list(text: str) -> tuple[int, ...]:
    """The kernel's list format, '0-2,5' -> (0, 1, 2, 5)."""
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return tuple(cpus)


def parse_command(index: int, output: str, errors: str, text: str, exit_status: int | None) -> CommandRun:
    """One run of the user's program, from its stdout: its last attempt's where-lines and stamps; the earlier
    attempts' nodes kept."""
    found = [([Place(None if m[1] == "?" else int(m[1]), m[2], cpu_list(m[3])) for m in lines], stamps)
             for lines, stamps in attempts(text, WHERE)]
    places, stamps = found[-1] if found else ([], {})
    earlier = tuple(tuple(sorted({p.host for p in a[0]})) for a in found[:-1])
    ordered = tuple(sorted(places, key=lambda p: (p.rank is None, p.rank or 0, p.host)))
    return CommandRun(index, output, errors, ordered, stamps.get("start"), stamps.get("end"), exit_status, earlier)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A finished run, before verification."""

    runs: list[Run]  # every hello world run, by index, parsed from its output (no ranks where it wrote none)
    errors: dict[int, str]  # why apps failed, one line each, by run index; COMPILE for the compile
    block_samples: list[tuple[float, int]]  # (time, block jobs in squeue), sampled while it ran
    cancelled_jobs: list[str]  # the run's Slurm jobs still there at the end, cancelled
    commands: list[CommandRun] = dataclasses.field(default_factory=list)  # the user's program's runs
    command_errors: dict[int, str] = dataclasses.field(default_factory=dict)  # why they failed, by run index
    # the blocks lost under the run (report.lost_block_facts makes result.json's record of each): the stall
    # watch's (LostBlock.as_dict()), the tasks Parsl retried at no cost (InfrastructureRetries.lost), the
    # executor's own replacements (Variant.lost_blocks)
    lost_seen: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    lost_retried: list[tuple[float, str, str]] = dataclasses.field(default_factory=list)
    lost_replaced: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def read(s: Settings, waited: Waited, config: Config, variant: Variant, cancelled_jobs: list[str]) -> Outcome:
    """The run's outputs parsed, with what waiting on it found: the hello world's runs (none with a --command
    without --probe), the user's program's, and one record per block lost under them."""
    out = s.outputs
    hello = not s.command or s.probe
    commands = ([_parsed_command(s.run_dir, out, i, waited.exits.get(i)) for i in range(s.repeats)]
                if s.command else [])
    runs = [_parsed(s.run_dir, out / f"run-{i}.out", i) for i in range(s.repeats)] if hello else []
    return Outcome(runs, waited.errors, waited.samples, cancelled_jobs, commands, waited.command_errors, waited.lost,
                   list(getattr(config.retry_handler, "lost", [])), variant.lost_blocks(config))


def _parsed(run_dir: Path, path: Path, index: int) -> Run:
    text = path.read_text(errors="replace") if path.exists() else ""
    return parse(index, str(path.relative_to(run_dir)), text)


def _parsed_command(run_dir: Path, out: Path, index: int, exit_status: int | None) -> CommandRun:
    path = out / f"command-{index}.out"
    text = path.read_text(errors="replace") if path.exists() else ""
    rel = path.relative_to(run_dir)
    return parse_command(index, str(rel), str(rel.with_suffix(".err")), text, exit_status)
