"""The user's own MPI program (run.py --command, workflows.api): the wrapper each rank runs, and where each
rank ran, read back from its output (pure, no Parsl).

The program itself is not trusted to say where it ran: each rank first runs a small sh wrapper that writes
one line (the launcher's rank, the node's hostname, the CPUs the rank may use) and then execs the program
in its place, so the program keeps the rank launcher's environment (MPI's included) and its affinity.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from .errors import WorkflowsError
from .placement import attempts

# The rank as each launcher names it: Open MPI, MPICH's Hydra (and Flux's PMI), PMIx, Flux itself.
RANK_VARIABLE = "${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-${PMIX_RANK:-${FLUX_TASK_RANK:-?}}}}"
WHERE = re.compile(r"^# rank (\d+|\?) (\S+) (\S+)\s*$")


class CommandError(WorkflowsError, ValueError):
    """A --command that cannot run; the message is one line."""

    refused = True


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


def argv(command: str) -> tuple[str, ...]:
    """--command's text as the program's words (shell quoting), refused in one line when it is none."""
    try:
        words = tuple(shlex.split(command))
    except ValueError as err:
        raise CommandError(f"--command {command!r}: {err}") from None
    if not words:
        raise CommandError("--command is empty: give the MPI program and its arguments, e.g. --command './app -n 10'")
    return words


def missing_program(words: Sequence[str], cwd: Path) -> str | None:
    """A program given as a path (./app, bin/app) that is not there, or None; a bare name is looked up on the nodes."""
    program = words[0]
    if "/" not in program:
        return None
    path = Path(program) if Path(program).is_absolute() else cwd / program
    return None if path.is_file() else f"--command: the program {program} is not a file (looked at {path})"


def wrapper(words: Sequence[str], cwd: Path) -> str:
    """The sh script one rank runs: the line that says where, then the program, in cwd (where the run was started)."""
    return ("#!/bin/sh\n"
            "# One rank of the user's MPI program: where it runs (read back by workflows/command.py), then\n"
            "# the program in this process's place, so it keeps the launcher's environment and CPU binding.\n"
            f'echo "# rank {RANK_VARIABLE} $(hostname) '
            "$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)\"\n"
            f"cd {shlex.quote(str(cwd))} || exit 126\n"
            f"exec {shlex.join(words)}\n")


def write_wrapper(path: Path, words: Sequence[str], cwd: Path) -> Path:
    """The wrapper as an executable file the nodes can run (it must be on a filesystem they see)."""
    path.write_text(wrapper(words, cwd))
    path.chmod(0o755)
    return path


def cpu_list(text: str) -> tuple[int, ...]:
    """The kernel's list format, '0-2,5' -> (0, 1, 2, 5)."""
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return tuple(cpus)


def parse(index: int, output: str, errors: str, text: str, exit_status: int | None) -> CommandRun:
    """One run's stdout: its last attempt's rank lines and stamps; the earlier attempts' nodes kept."""
    found = [([Place(None if m[1] == "?" else int(m[1]), m[2], cpu_list(m[3])) for m in lines], stamps)
             for lines, stamps in attempts(text, WHERE)]
    places, stamps = found[-1] if found else ([], {})
    earlier = tuple(tuple(sorted({p.host for p in a[0]})) for a in found[:-1])
    ordered = tuple(sorted(places, key=lambda p: (p.rank is None, p.rank or 0, p.host)))
    return CommandRun(index, output, errors, ordered, stamps.get("start"), stamps.get("end"), exit_status, earlier)


def problems(runs: Sequence[CommandRun]) -> list[str]:
    """Runs that exited 0 without a rank having started (a failed run is reported with its exit status)."""
    return [f"run {r.index}: exited 0 but no rank started (see {r.errors})"
            for r in runs if r.exit_status == 0 and not r.places]
