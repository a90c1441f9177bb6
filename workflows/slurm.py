"""The few Slurm facts a run needs: the partition's nodes, its own block jobs, cancelling them."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence


class SlurmError(RuntimeError):
    """Slurm cannot be used; the message is one line."""


def _run(cmd: Sequence[str], timeout: float = 20) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(f"Slurm unreachable: {cmd[0]} not found (is Slurm installed and on PATH?)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"Slurm unreachable: {' '.join(cmd)} timed out") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise SlurmError(f"Slurm unreachable: {cmd[0]}: {lines[-1] if lines else f'exit {proc.returncode}'}")
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


def partition_nodes(partition: str | None) -> dict[str, int]:
    cmd = ["sinfo", "-h", "-N", "-o", "%N %c %t"] + (["-p", partition] if partition else [])
    nodes = parse_sinfo(_run(cmd))
    if not nodes:
        raise SlurmError(f"no usable nodes in partition {partition or '(default)'}")
    return nodes


def parse_squeue(text: str, tag: str) -> list[str]:
    """`squeue -h -o '%i %t %k'` -> ids of live jobs carrying this run's comment."""
    jobs = []
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[2].strip() == tag and parts[1] not in ("CD", "F", "CA", "TO", "NF"):
            jobs.append(parts[0])
    return jobs


def tagged_jobs(tag: str) -> list[str]:
    return parse_squeue(_run(["squeue", "-h", "-o", "%i %t %k"]), tag)


def cancel_tagged(tag: str, timeout: float = 30) -> list[str]:
    """Cancel every job of this run and wait until squeue shows none: Parsl leaves blocks behind."""
    jobs = tagged_jobs(tag)
    if jobs:
        _run(["scancel", *jobs])
    deadline = time.monotonic() + timeout
    while tagged_jobs(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    return jobs


class BlockSampler:
    """Counts this run's block jobs in squeue while the workflow runs (static blocks must stay constant)."""

    def __init__(self, tag: str, period: float = 0.5):
        self.tag, self.period = tag, period
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), len(tagged_jobs(self.tag))))
            except SlurmError:
                pass
            self._stop.wait(self.period)

    def __enter__(self) -> BlockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
