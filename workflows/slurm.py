"""The few Slurm facts a run needs: the partition's nodes, its own block jobs, cancelling them."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from .errors import WorkflowsError


class SlurmError(WorkflowsError, RuntimeError):
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


class Block(NamedTuple):
    """One block job of the run as squeue shows it."""

    job: str
    state: str
    host: str  # the batch host: the block's first node ("n/a" while pending)
    nodes: int  # nodes it holds, or asks for while pending


def parse_squeue(text: str, tag: str) -> list[Block]:
    """`squeue -h -o '%i %t %B %D %k'` -> the live jobs carrying this run's comment."""
    jobs = []
    for line in text.splitlines():
        parts = line.split(None, 4)
        if len(parts) == 5 and parts[4].strip() == tag and parts[1] not in ("CD", "F", "CA", "TO", "NF"):
            jobs.append(Block(parts[0], parts[1], parts[2], int(parts[3]) if parts[3].isdigit() else 0))
    return jobs


def tagged_job_states(tag: str) -> list[Block]:
    return parse_squeue(_run(["squeue", "-h", "-o", "%i %t %B %D %k"]), tag)


def tagged_jobs(tag: str) -> list[str]:
    return [b.job for b in tagged_job_states(tag)]


def slurmd_port() -> int:
    """The port every node's slurmd listens on (a node that does not answer there is gone)."""
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=20).stdout
    m = re.search(r"^SlurmdPort\s*=\s*(\d+)", out, re.MULTILINE)
    return int(m[1]) if m else 6818


def node_address(node: str) -> str | None:
    """The address Slurm reaches a node at (NodeAddr: a node's name may resolve only on the nodes)."""
    try:
        out = _run(["scontrol", "show", "node", node], timeout=10)
    except SlurmError:
        return None
    m = re.search(r"\bNodeAddr=(\S+)", out)
    return m[1] if m else None


class SlurmdProbe:
    """Whether a node's slurmd accepts a connection, at the address and port Slurm itself uses (both cached).

    A node Slurm cannot name an address for is taken as alive: only a refused or silent slurmd is a dead node.
    """

    def __init__(self) -> None:
        self.port: int | None = None
        self.addresses: dict[str, str | None] = {}

    def silent(self, hosts: Sequence[str], timeout: float = 2.0) -> list[str]:
        if self.port is None:
            self.port = slurmd_port()
        for host in hosts:
            if host not in self.addresses:
                self.addresses[host] = node_address(host)
        known = {h: a for h in hosts if (a := self.addresses[h])}
        dead = set(unreachable(list(known.values()), self.port, timeout))
        return [h for h, a in known.items() if a in dead]

    def alive(self, host: str) -> bool:
        return not self.silent([host])


def unreachable(hosts: Sequence[str], port: int, timeout: float = 3.0) -> list[str]:
    """Hosts whose slurmd does not accept a connection: dead before Slurm has noticed (SlurmdTimeout)."""
    dead = []
    for host in hosts:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError:
            dead.append(host)
    return dead


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
