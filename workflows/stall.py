"""The stall watch: why no block of a run can make progress, sampled from squeue while the run waits on its apps.

Parsl waits forever for a block that never starts (its nodes died) or for a block it wrongly thinks
is pending; the sampler sees both in squeue and sinfo, and wait() gives up the runs such a stall holds.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future

from .slurm import SlurmError, tagged_job_states, usable_nodes

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


class Stalled(RuntimeError):
    """The run could not finish: no block of the workflow could run."""


def wait(futures: Mapping[int, Future], sampler: BlockSampler, stall_timeout: float) -> dict[int, BaseException]:
    """Wait for every app; those that cannot finish because no block can run any more are given up.

    Returns the failures by index (a Stalled for each app given up).
    """
    failures: dict[int, BaseException] = {}
    pending = dict(futures)
    while pending:
        concurrent.futures.wait(pending.values(), timeout=1.0, return_when=concurrent.futures.FIRST_COMPLETED)
        for i, fut in list(pending.items()):
            if fut.done():
                del pending[i]
                err = fut.exception()
                if err is not None:
                    failures[i] = err
        reason = sampler.stalled(stall_timeout) if pending else None
        if reason:
            for i in pending:
                failures[i] = Stalled(f"not finished: {reason} (--stall-timeout {stall_timeout:g})")
            break
    return failures
