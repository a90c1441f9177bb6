"""The run's sixth step, its verification: what its outputs show (workflows/outputs.py), checked (pure, no cluster).

Every hello world run on K distinct nodes, every CPU slot answered once, overlapping runs on disjoint nodes;
each failed app, and each run of the user's program that failed or in which no rank started, is a problem.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .outputs import Outcome
from .placement import Run
from .stall import COMPILE

if TYPE_CHECKING:
    from .settings import Settings


def problems(s: Settings, outcome: Outcome, cpus_by_node: Mapping[str, int]) -> list[str]:
    """The hello world's (each failure, then what verify() finds wrong with the runs that completed), as the
    probe's when a command ran; then each failed run of the command."""
    hello = _hello_problems(s, outcome, cpus_by_node) if not s.command or s.probe else []
    if not s.command:
        return hello
    failed = [outcome.command_errors[i] for i in sorted(outcome.command_errors)]
    return [f"probe: {p}" for p in hello] + failed + [
        f"run {r.index}: exited 0 but no rank started (see {r.errors})"
        for r in outcome.commands if r.exit_status == 0 and not r.places]


def _hello_problems(s: Settings, outcome: Outcome, cpus_by_node: Mapping[str, int]) -> list[str]:
    errors = outcome.errors
    completed = [] if COMPILE in errors else [r for r in outcome.runs if r.index not in errors]
    return [errors[i] for i in sorted(errors)] + verify(
        completed, repeats=None if errors else s.repeats, nodes_per_run=s.nodes_per_run, cpus_by_node=cpus_by_node)

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


def block_count_problems(samples: Sequence[tuple[float, int]], expected: int) -> list[str]:
    """Static blocks: once all blocks are submitted, squeue must show exactly `expected` until the end."""
    counts = [n for _, n in samples]
    if expected not in counts:
        return [f"static: squeue never showed {expected} blocks (saw {sorted(set(counts))})"]
    after = counts[counts.index(expected):]
    changed = sorted({n for n in after if n != expected})
    return [f"static: block count left {expected} during the run (saw {changed})"] if changed else []
