"""The few Slurm facts a run needs: the partition's nodes, its own block jobs, cancelling them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence


class SlurmError(RuntimeError):
    """Slurm cannot be used; the message is one line: what failed (`detail`), then how to fix it if known."""

    def __init__(self, detail: str, hint: str = "") -> None:
        super().__init__(f"{detail} ({hint})" if hint else detail)
        self.detail = detail


HINT = ("is a cluster up and SLURM_CONF set? for the local one: scripts/local-cluster.sh up && "
        'eval "$(scripts/local-cluster.sh env)"')


def _run(cmd: Sequence[str], timeout: float = 20) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(f"Slurm unreachable: {cmd[0]} not found (is Slurm installed and on PATH?)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"Slurm unreachable: {' '.join(cmd)} timed out") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        last = lines[-1].removeprefix(f"{cmd[0]}: ") if lines else f"exit {proc.returncode}"
        raise SlurmError(f"Slurm unreachable: {cmd[0]}: {last}", HINT)
    return proc.stdout


def parse_sinfo(text: str) -> dict[str, int]:
    """`sinfo -h -N -o '%N %c %t'` -> CPUs by usable node (down and drained nodes left out)."""
    nodes = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, cpus, state = line.split()[:3]
        if not any(bad in state for bad in ("down", "drain", "fail", "maint")) and not state.endswith("*"):
            nodes[name] = int(cpus)
    return nodes


def usable_nodes(partition: str | None) -> dict[str, int]:
    return parse_sinfo(_run(["sinfo", "-h", "-N", "-o", "%N %c %t"] + (["-p", partition] if partition else [])))


def partition_nodes(partition: str | None) -> dict[str, int]:
    """The usable nodes of the partition; none is an error before anything is submitted."""
    nodes = usable_nodes(partition)
    if not nodes:
        raise SlurmError(f"no usable nodes in partition {partition or '(default)'}")
    return nodes


def parse_squeue(text: str, tag: str) -> list[tuple[str, str, str]]:
    """`squeue -h -o '%i %t %B %k'` -> (id, state, batch host) of live jobs carrying this run's comment."""
    jobs = []
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[3].strip() == tag and parts[1] not in ("CD", "F", "CA", "TO", "NF"):
            jobs.append((parts[0], parts[1], parts[2]))
    return jobs


def tagged_job_states(tag: str) -> list[tuple[str, str, str]]:
    return parse_squeue(_run(["squeue", "-h", "-o", "%i %t %B %k"]), tag)


def tagged_jobs(tag: str) -> list[str]:
    return [job for job, _, _ in tagged_job_states(tag)]


def cancel_tagged(tag: str, timeout: float = 120, on_wait: Callable[[list[str]], None] | None = None) -> list[str]:
    """Cancel every job of this run and wait until squeue shows none: Parsl leaves blocks behind.

    A job on a node that died stays completing until Slurm gives the node up (SlurmdTimeout and its
    ping interval: tens of seconds); on_wait hears once which jobs are still there after a few seconds.
    """
    jobs = tagged_jobs(tag)
    if jobs:
        _run(["scancel", *jobs])
    started = time.monotonic()
    told = False
    while (left := tagged_jobs(tag)) and time.monotonic() - started < timeout:
        if on_wait and not told and time.monotonic() - started > 3:
            on_wait(left)
            told = True
        time.sleep(0.2)
    return jobs
