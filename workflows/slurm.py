"""The few Slurm facts a run needs: the partition's nodes, its own block jobs, cancelling them."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Collection, Sequence


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


LIVE = ("R", "CG", "CF")  # states in which a block is (about to be) running


def stall_reason(jobs: Sequence[tuple[str, str, str]], usable: Collection[str], block_nodes: int) -> str | None:
    """Why none of this run's blocks can make progress right now, or None while one can.

    A block is running; or pending on a partition with enough usable nodes (a busy cluster: wait).
    Nothing queued at all, or blocks that need more nodes than are usable, cannot progress. Nor can
    a block whose first node (the batch host, where its worker pool or Flux's rank 0 runs) is gone:
    with --no-kill, Slurm keeps such a job running on the other nodes.
    """
    headless = [job for job, state, host in jobs if state == "R" and host not in usable]
    if any(state in LIVE and job not in headless for job, state, _ in jobs):
        return None
    short = (f"a block needs {block_nodes} nodes but only {len(usable)} of the partition are usable "
             "(nodes down or drained)") if len(usable) < block_nodes else None
    if headless:
        return (f"block job {' '.join(headless)} lost its first node, where the block's workers (or Flux's "
                "rank 0) ran" + (f"; {short}" if short else ""))
    if not jobs:
        return "no block of this run is queued or running: " + (short or "its blocks failed or ended")
    return short


class BlockSampler:
    """Samples this run's block jobs and the partition's usable nodes while the workflow runs.

    The samples show that static blocks stay constant; `stalled()` tells how long no block could run.
    """

    def __init__(self, tag: str, partition: str | None = None, block_nodes: int = 1, period: float = 1.0):
        self.tag, self.partition, self.block_nodes, self.period = tag, partition, block_nodes, period
        self.samples: list[tuple[float, int]] = []
        self._stalled_since: float | None = None
        self._reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        now = time.time()
        try:
            jobs = tagged_job_states(self.tag)
            usable = usable_nodes(self.partition)
        except SlurmError as err:  # a controller restart is ridden out; a controller gone for good is not
            reason: str | None = f"Slurm does not answer ({err.detail})"
        else:
            self.samples.append((now, len(jobs)))
            reason = stall_reason(jobs, usable, self.block_nodes)
        if reason is None:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = now
        self._reason = reason

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.period)

    def stalled(self, longer_than: float) -> str | None:
        """The reason no block could run, once that has lasted longer than longer_than seconds."""
        since = self._stalled_since
        if since is not None and time.time() - since > longer_than:
            return f"{self._reason} for {time.time() - since:.0f} s"
        return None

    def __enter__(self) -> BlockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
