"""The run's fourth step: wait for every app under the stall watch; why each failed, in one line.

The stall watch: why no block of a run can make progress, sampled from squeue while the run waits on its apps.

Parsl waits forever for a block that never starts (its nodes died) or for a block it wrongly thinks
is pending; the sampler sees both in squeue and sinfo, and wait() gives up the runs such a stall holds.
It also tells, within a second or two, that a running block lost its first node (its slurmd does not
answer, before Slurm itself notices): `on_lost` hears it once per block, so a variant can replace it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import WorkflowsError
from .settings import Settings
from .slurm import Block, SlurmdProbe, SlurmError, tagged_job_states, usable_nodes

if TYPE_CHECKING:
    from .submission import Submitted

Key = TypeVar("Key", bound=Hashable)
COMPILE = -1  # the compile's index among the failures

LIVE = ("R", "CG", "CF")  # states in which a block is (about to be) running


def stall_reason(jobs: Sequence[Block], usable: Collection[str], block_nodes: int) -> str | None:
    """Why none of this run's blocks can make progress right now, or None while one can.

    A block is running; or pending on a partition with enough usable nodes (a busy cluster: wait).
    Nothing queued at all, or blocks that need more nodes than are usable, cannot progress. Nor can
    a block whose first node (the batch host, where its worker pool or Flux's rank 0 runs) is gone:
    with --no-kill, Slurm keeps such a job running on the other nodes. block_nodes: what a block
    needs when none is pending (a pending one says what it asks for).
    """
    headless = [b.job for b in jobs if b.state == "R" and b.host not in usable]
    if any(b.state in LIVE and b.job not in headless for b in jobs):
        return None
    needs = min((b.nodes for b in jobs if b.state == "PD" and b.nodes), default=block_nodes)
    short = (f"a block needs {needs} nodes but only {len(usable)} of the partition are usable "
             "(nodes down or drained)") if len(usable) < needs else None
    if headless:
        return (f"block job {' '.join(headless)} lost its first node, where the block's workers (or Flux's "
                "rank 0) ran" + (f"; {short}" if short else ""))
    if not jobs:
        return "no block of this run is queued or running: " + (short or "its blocks failed or ended")
    return short


@dataclasses.dataclass
class LostBlock:
    """A running block whose first node stopped answering: when it was seen, and what was done about it."""

    job: str
    host: str
    at: float
    action: str = ""  # what on_lost did (e.g. "cancelled; a new block of 6 nodes")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class BlockSampler:
    """Samples this run's block jobs and the partition's usable nodes while the workflow runs.

    The samples show that static blocks stay constant; `stalled()` tells how long no block could run.
    on_lost(job, first node) is called (in the sampler's thread) once for each running block whose
    first node does not answer; what it returns is kept as the LostBlock's action.
    """

    def __init__(self, tag: str, partition: str | None = None, block_nodes: int = 1, period: float = 1.0,
                 on_lost: Callable[[str, str], str] | None = None):
        self.tag, self.partition, self.block_nodes, self.period = tag, partition, block_nodes, period
        self.on_lost = on_lost
        self.samples: list[tuple[float, int]] = []
        self.lost: list[LostBlock] = []
        self._stalled_since: float | None = None
        self._reason: str | None = None
        self._probe = SlurmdProbe()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _headless(self, jobs: Sequence[Block], usable: Collection[str]) -> list[Block]:
        """Running blocks whose first node is gone: down in sinfo, or its slurmd silent (seconds, not minutes)."""
        seen = {b.job for b in self.lost}
        running = [b for b in jobs if b.state == "R" and b.job not in seen]
        if not running:
            return []
        silent = set(self._probe.silent([b.host for b in running if b.host in usable]))
        return [b for b in running if b.host not in usable or b.host in silent]

    def _watch(self, jobs: Sequence[Block], usable: Collection[str]) -> None:
        for block in self._headless(jobs, usable) if self.on_lost is not None else []:
            record = LostBlock(block.job, block.host, time.time())
            self.lost.append(record)
            assert self.on_lost is not None
            try:
                record.action = self.on_lost(block.job, block.host)
            except Exception as err:  # noqa: BLE001 - the stall watch still ends a run that cannot go on
                record.action = f"not replaced: {type(err).__name__}: {err}"

    def _sample(self) -> None:
        now = time.time()
        try:
            jobs = tagged_job_states(self.tag)
            usable = usable_nodes(self.partition)
        except SlurmError as err:  # a controller restart is ridden out; a controller gone for good is not
            reason: str | None = f"Slurm does not answer ({err.detail})"
        else:
            self.samples.append((now, len(jobs)))
            self._watch(jobs, usable)
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


class Stalled(WorkflowsError, RuntimeError):
    """The run could not finish: no block of the workflow could run."""


@dataclasses.dataclass(frozen=True)
class Waited:
    """What waiting on a run's apps came to: why each failed, and what the stall watch saw meanwhile."""

    errors: dict[int, str]  # the hello world's, one line each, by run index; outputs.COMPILE for the compile
    command_errors: dict[int, str]  # the user's program's, by run index
    exits: dict[int, int | None]  # each run of the user's program: its exit status (None: none was reported)
    samples: list[tuple[float, int]]  # (time, block jobs in squeue)
    lost: list[dict[str, Any]]  # LostBlock.as_dict() of each block seen to lose its first node


def wait_all(submitted: Submitted, s: Settings, block_nodes: int,
             on_lost: Callable[[str, str], str] | None) -> Waited:
    """Every app of the run waited on at once under the stall watch (on_lost: the variant's block_watch).

    A failed compile is the hello world's one failure (its runs never started); a failed hello world is the
    reason none of the user's program's runs started (--probe).
    """
    futures: dict[tuple[str, int], Future] = {
        **({("compile", COMPILE): submitted.compiled} if submitted.compiled is not None else {}),
        **{("run", i): f for i, f in submitted.runs.items()},
        **{("command", i): f for i, f in submitted.commands.items()}}
    with BlockSampler(s.tag, s.partition, block_nodes, on_lost=on_lost) as sampler:
        failed = wait(futures, sampler, s.stall_timeout)
    compile_err = s.outputs / "compile.err"
    if ("compile", COMPILE) in failed:
        see = f" (see {compile_err})" if compile_err.exists() else ""
        errors = {COMPILE: _failure("compiling the MPI program", failed["compile", COMPILE], s.run_timeout) + see}
    else:
        errors = {i: _failure(f"run {i}", err, s.run_timeout) for (kind, i), err in sorted(failed.items())
                  if kind == "run"}
    exits: dict[int, int | None] = {}
    if errors:
        command_errors = {i: f"run {i} not started: the probe (the hello world) failed" for i in submitted.commands}
    else:
        exits = {i: _exit_status(failed.get(("command", i))) for i in submitted.commands}
        command_errors = {i: _failure(f"run {i}", err, s.run_timeout, see=f"{s.outputs.name}/command-{i}.err")
                          for (kind, i), err in sorted(failed.items()) if kind == "command"}
    return Waited(errors, command_errors, exits, sampler.samples, [b.as_dict() for b in sampler.lost])


def _exit_status(err: BaseException | None) -> int | None:
    """A run's exit status: 0, the command's own, or None when it never reported one (stalled, its worker lost)."""
    from parsl.app.errors import BashExitFailure

    if err is None:
        return 0
    return err.exitcode if isinstance(err, BashExitFailure) else None


def _failure(what: str, err: BaseException, timeout: float, see: str | None = None) -> str:
    """One line for a failed app: `what` is 'run 3' or 'compiling the MPI program'; see: the run's stderr."""
    from parsl.app.errors import BashExitFailure

    from .submission import TIMED_OUT

    if isinstance(err, Stalled):
        return f"{what} {err}"
    if isinstance(err, BashExitFailure) and err.exitcode == TIMED_OUT:
        return f"{what} timed out after {timeout:g} s (--run-timeout)"
    if isinstance(err, BashExitFailure) and see:
        return f"{what} exited {err.exitcode} (see {see})"
    return f"{what} failed: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"


def wait(futures: Mapping[Key, Future], sampler: BlockSampler, stall_timeout: float) -> dict[Key, BaseException]:
    """Wait for every app; those that cannot finish because no block can run any more are given up.

    Returns the failures by index (a Stalled for each app given up).
    """
    failures: dict[Key, BaseException] = {}
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
