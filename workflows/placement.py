"""Raw MPI outputs -> runs -> the list of placement problems (pure, no cluster)."""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

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


def overlapping(a: Run, b: Run) -> bool:
    if a.start is None or a.end is None or b.start is None or b.end is None:
        return True  # unknown times: assume they ran together, the strict reading
    return a.start < b.end and b.start < a.end


def verify(runs: Sequence[Run], *, repeats: int | None, nodes_per_run: int,
           cpus_by_node: Mapping[str, int]) -> list[str]:
    """Every run on K distinct nodes, every CPU slot answered once, overlapping runs on disjoint nodes.

    With repeats, runs 0..repeats-1 must all be there; None checks only the runs given (those that
    completed, when others failed and are reported on their own).
    """
    problems = []
    seen = sorted(r.index for r in runs)
    if repeats is not None and seen != list(range(repeats)):
        problems.append(f"expected runs 0..{repeats - 1}, got {seen}")
    for run in runs:
        name = f"run {run.index}"
        if not run.ranks:
            problems.append(f"{name}: no rank answered")
            continue
        if len(run.nodes) != nodes_per_run:
            problems.append(f"{name}: ran on {len(run.nodes)} nodes {run.nodes}, expected {nodes_per_run}")
        sizes = {r.size for r in run.ranks}
        size = max(sizes)
        if len(sizes) > 1:
            problems.append(f"{name}: ranks disagree on the size: {sorted(sizes)}")
        counts = collections.Counter(r.rank for r in run.ranks)
        missing = sorted(set(range(size)) - set(counts))
        doubled = sorted(r for r, c in counts.items() if c > 1)
        if missing:
            problems.append(f"{name}: ranks {missing} of {size} did not answer")
        if doubled:
            problems.append(f"{name}: ranks {doubled} answered more than once")
        by_node = collections.defaultdict(list)
        for r in run.ranks:
            by_node[r.host].append(r.cpu)
        for host, cpus in sorted(by_node.items()):
            want = cpus_by_node.get(host)
            if want is None:
                problems.append(f"{name}: node {host} is not in the partition")
                continue
            if len(cpus) != want:
                problems.append(f"{name}: {host} ran {len(cpus)} ranks, Slurm gave it {want} CPUs")
            dup = sorted(c for c, k in collections.Counter(cpus).items() if k > 1)
            if dup:
                problems.append(f"{name}: {host} CPU {', '.join(map(str, dup))} answered more than once")
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            shared = sorted(set(a.nodes) & set(b.nodes))
            if shared and overlapping(a, b):
                problems.append(f"runs {a.index} and {b.index} overlapped in time on nodes {shared}")
    return problems


class Timed(Protocol):
    """A run with the interval its stamps give (a hello world run, a run of the user's program)."""

    @property
    def start(self) -> float | None: ...

    @property
    def end(self) -> float | None: ...


def max_concurrency(runs: Sequence[Timed]) -> int:
    """The most runs that were in flight at one moment."""
    events = sorted([(r.start, 1) for r in runs if r.start is not None]
                    + [(r.end, -1) for r in runs if r.end is not None], key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def block_count_problems(samples: Sequence[tuple[float, int]], expected: int) -> list[str]:
    """Static blocks: once all blocks are submitted, squeue must show exactly `expected` until the end."""
    counts = [n for _, n in samples]
    if expected not in counts:
        return [f"static: squeue never showed {expected} blocks (saw {sorted(set(counts))})"]
    after = counts[counts.index(expected):]
    changed = sorted({n for n in after if n != expected})
    return [f"static: block count left {expected} during the run (saw {changed})"] if changed else []
