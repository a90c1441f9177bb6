"""A monitored run's Flux jobs, from Flux's own job events: Parsl's try rows get their nodes and times.

Parsl's DFK writes the workflow, task, status and try rows itself; what it gets from a worker elsewhere
(the try's host and when it started and stopped running: its monitoring wrapper's WORKER_TASK_INFO messages) no
worker sends under DirectFluxExecutor, since no Python runs in a bash app's ranks. So one thread per
instance follows the instance's job journal (flux.job.JournalConsumer: every job's submit, alloc with its
R, start, finish with its wait status, exception, each with Flux's timestamp), and for each job of a
monitored task sends Parsl the same two messages: running at the start event (hostname: the job's nodes),
running_ended at the finish event. Nothing polls: the journal is a stream. Each job's record (nodes,
cores, exit status, times, exception) is kept for the run's own flux_job table (workflows.monitoring).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

POLL_TIMEOUT = 0.5  # seconds a journal wait lasts before the thread looks at its stop event
DRAIN_TIMEOUT = 5.0  # seconds the executor's shutdown waits for the last jobs' finish events


@dataclasses.dataclass
class JobRecord:
    """One Flux job of a monitored task: what Flux says of it."""

    task_id: int
    try_id: int
    flux_job: str
    block: str
    nodes: list[str] = dataclasses.field(default_factory=list)
    cores: int | None = None
    submit: float | None = None
    alloc: float | None = None
    start: float | None = None
    finish: float | None = None
    status: int | None = None  # the wait status of the job (the highest over its ranks)
    exception: str | None = None  # "type: note" of a job exception (timeout, cancel, a node lost)

    @property
    def exit_code(self) -> int | None:
        """The shell's convention: the exit code, or 128 + the signal that ended it."""
        if self.status is None:
            return None
        return (self.status >> 8) & 0xFF if self.status & 0x7F == 0 else 128 + (self.status & 0x7F)

    @property
    def done(self) -> bool:
        return self.finish is not None or (self.exception is not None and self.start is None)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "exit_code": self.exit_code, "source": "flux job journal"}


def worker_task_info(run_id: str, job: JobRecord, *, last: bool) -> tuple[Any, dict[str, Any]]:
    """Parsl's message for a try starting (first) or ending (last) to run, as its monitoring wrapper sends it."""
    from parsl.monitoring.message_type import MessageType

    when = job.finish if last else job.start
    return (MessageType.WORKER_TASK_INFO, {
        "run_id": run_id, "try_id": job.try_id, "task_id": job.task_id, "hostname": ",".join(job.nodes),
        "block_id": job.block, "first_msg": not last, "last_msg": last,
        "timestamp": datetime.datetime.fromtimestamp(when if when is not None else time.time())})


def resources(R: Any) -> tuple[list[str], int | None]:
    """The nodes (Flux's names: Slurm's, see workflows.flux.allocation) and cores of a job's R."""
    from flux.resource import ResourceSet

    try:
        rs = ResourceSet(R)
        return list(rs.nodelist), int(rs.ncores)
    except Exception as err:  # noqa: BLE001 - a malformed R costs the record its nodes, not the run
        logger.warning("unreadable R of a job: %s", err)
        return [], None


class JobEvents:
    """The executor's monitored jobs across its instances: which Flux job is which task's try, and what Flux said."""

    def __init__(self, send: Callable[[Any], None], run_id: str) -> None:
        self.send = send  # the DFK's monitoring queue's put (hub.resource_msgs)
        self.run_id = run_id
        self.lock = threading.Lock()
        self.records: list[JobRecord] = []
        self.by_job: dict[tuple[str, int], JobRecord] = {}  # (block, Flux job id) -> its record
        self.early: dict[tuple[str, int], list[Any]] = {}  # events seen before the job's id was known here
        self.changed = threading.Condition(self.lock)
        self.block = ""  # the block job of the instance jobs go to now

    def serving(self, block: str, uri: str, stop: threading.Event) -> None:
        """The executor's loop serves a new instance (until stop): follow its journal."""
        self.block = block
        self.watch(block, uri, stop)

    def track(self, flux_future: Any, task_id: int, try_id: int) -> None:
        """Once Flux gives the job its id, its events belong to the task's try (and the ones already seen)."""
        block = self.block

        def known(future: Any) -> None:
            jobid = int(future.jobid())
            record = JobRecord(task_id, try_id, str(future.jobid()), block)
            with self.lock:
                self.records.append(record)
                self.by_job[(block, jobid)] = record
                pending = self.early.pop((block, jobid), [])
            for event in pending:
                self._apply(record, event)

        flux_future.add_jobid_callback(known)

    def on_event(self, block: str, event: Any) -> None:
        key = (block, int(event.jobid))
        with self.lock:
            record = self.by_job.get(key)
            if record is None:
                if event.name in ("submit", "alloc", "start", "finish", "exception"):
                    self.early.setdefault(key, []).append(event)
                return
        self._apply(record, event)

    def _apply(self, job: JobRecord, event: Any) -> None:
        name, context = event.name, getattr(event, "context", None) or {}
        if name in ("submit", "alloc", "start", "finish"):
            setattr(job, name, event.timestamp)
        if name == "alloc" and getattr(event, "R", None):
            job.nodes, job.cores = resources(event.R)
        elif name == "start":
            self.send(worker_task_info(self.run_id, job, last=False))
        elif name == "finish":
            job.status = context.get("status")
            self.send(worker_task_info(self.run_id, job, last=True))
        elif name == "exception" and context.get("severity", 0) == 0:
            job.exception = f"{context.get('type', '?')}: {context.get('note', '')}".rstrip(": ")
        with self.changed:
            self.changed.notify_all()

    def drain(self, block: str, timeout: float = DRAIN_TIMEOUT) -> None:
        """Wait (a little) until every job of the block has its end from Flux, before the instance goes."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while any(r.block == block and not r.done for r in self.records):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.changed.wait(left)

    def follow(self, block: str, uri: str, stop: threading.Event) -> None:
        """The instance's job journal, until stop or the instance is gone (run in a thread of its own)."""
        import flux
        import flux.job

        try:
            consumer = flux.job.JournalConsumer(flux.Flux(uri)).start()
        except Exception as err:  # noqa: BLE001 - no journal: the run goes on, its tries without nodes
            logger.warning("job journal of block %s: %s", block, err)
            return
        while not stop.is_set():
            try:
                event = consumer.poll(timeout=POLL_TIMEOUT)
            except TimeoutError:
                continue
            except OSError as err:  # the instance's connection is gone: the executor's watch handles that
                logger.info("job journal of block %s ended: %s", block, err)
                return
            if event is None:
                return
            if not event.is_empty():
                self.on_event(block, event)

    def watch(self, block: str, uri: str, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.follow, args=(block, uri, stop), name=f"flux-journal-{block}",
                                  daemon=True)
        thread.start()
        return thread
