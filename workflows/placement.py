"""Where each rank of a hello world run ran, read from its output: raw MPI outputs -> runs (pure, no cluster).

The stamps around each attempt are written (stamp) and read (STAMP) here; workflows/verify.py checks the runs.
"""

from __future__ import annotations

import dataclasses
import re

HELLO = re.compile(r"^Hello world from processor (\S+), rank (\d+) out of (\d+) processors, cpu (-?\d+)\s*$")
STAMP = re.compile(r"^# (start|end) (\d+(?:\.\d+)?)(?: (\S+))?\s*$")


def stamp(which: str) -> str:
    """The shell command that writes a start or end stamp (read back by STAMP).

    Each stamp names its attempt: a retried run appends to the same output file, and the verifier
    must read the last attempt only. Under Flux every rank stamps, all with the job's id; elsewhere
    the wrapper's host and pid tell one attempt from the next.
    """
    return f'echo "# {which} $(date +%s.%N) ${{FLUX_JOB_ID:-$(hostname)-$$}}"'


@dataclasses.dataclass(frozen=True)
class Rank:
    rank: int
    size: int
    host: str
    cpu: int


@dataclasses.dataclass(frozen=True)
class Run:
    index: int
    output: str  # relative to the run directory
    ranks: tuple[Rank, ...]
    start: float | None
    end: float | None
    failed_attempts: tuple[tuple[str, ...], ...] = ()  # the nodes of each earlier, retried attempt

    @property
    def nodes(self) -> list[str]:
        return sorted({r.host for r in self.ranks})


def attempts(text: str, rank_line: re.Pattern[str]) -> list[tuple[list[re.Match[str]], dict[str, float]]]:
    """An output file's attempts, in order: each one's rank_line matches and its widest start/end stamps.

    A retried run appends a new attempt (a start stamp with a new attempt id) to the same file. Under
    Flux every rank stamps, all with the job's id: the widest span of them is the job's.
    """
    found: list[tuple[list[re.Match[str]], dict[str, float]]] = []
    current = None
    for line in text.splitlines():
        if m := rank_line.match(line):
            if not found:
                found.append(([], {}))
            found[-1][0].append(m)
        elif m := STAMP.match(line):
            if m[1] == "start" and (not found or (m[3] is not None and m[3] != current)):
                found.append(([], {}))
                current = m[3]
            stamps = found[-1][1]
            pick = min if m[1] == "start" else max
            stamps[m[1]] = pick(stamps.get(m[1], float(m[2])), float(m[2]))
    return found


def parse(index: int, output: str, text: str) -> Run:
    """One run's output file: the hello lines and the start/end stamps of its last attempt; the earlier
    attempts' nodes are kept to report where the run failed."""
    found = [([Rank(int(m[2]), int(m[3]), m[1], int(m[4])) for m in lines], stamps)
             for lines, stamps in attempts(text, HELLO)]
    ranks, stamps = found[-1] if found else ([], {})
    earlier = tuple(tuple(sorted({r.host for r in a[0]})) for a in found[:-1])
    return Run(index, output, tuple(ranks), stamps.get("start"), stamps.get("end"), earlier)
