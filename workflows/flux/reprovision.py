"""DirectFluxExecutor's submission loop: one Flux instance at a time, a new block when one is lost.

Parsl's FluxExecutor submits one block through its provider and never another: when that instance
dies (its first node lost, the block job killed or failed, its connection gone) every task fails and
the executor is broken. Here the loop serves an instance until it is lost, cancels its block, asks the
provider for a new one (sized and placed by the caller's `refit`), and submits to the new instance the
jobs that had not finished; finished ones stay finished, and the tasks' futures never see the loss.
After `max_lost_blocks` lost blocks it gives up as Parsl does: every unfinished task fails (InstanceLost).

A job ends with a Flux job exception (JobException: its own timeout, cancel, a node of it lost) as in
Parsl; any other exception means the instance's connection broke, and the job waits for the watch to
confirm the instance gone (then it is resubmitted) or alive (then the exception is the job's).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import socket as sockets
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import zmq

from ..errors import WorkflowsError

logger = logging.getLogger(__name__)

WATCH_PERIOD = 1.0  # seconds between the watch's looks at the block job and its first node
STATUS_PERIOD = 2.0  # seconds between the provider's status queries (squeue) of the block job
CONFIRM = 5.0  # seconds a broken connection waits for the instance to be confirmed lost
HANDSHAKE = 30.0  # seconds a running block has to start its instance (its first node may die before)
PROBE_TIMEOUT = 2.0


class NoInstance(RuntimeError):
    """A block whose job ended before its Flux instance answered."""

    def __init__(self, job_id: str, why: str = "ended before its Flux instance answered") -> None:
        super().__init__(f"block job {job_id} {why}")
        self.job_id = job_id


class InstanceLost(WorkflowsError, RuntimeError):
    """Flux instances kept dying: more blocks lost than the executor may replace."""


@dataclasses.dataclass
class LostBlock:
    """One lost instance: its block job, first node, why and when, and the jobs run again elsewhere."""

    job_id: str
    host: str | None
    reason: str
    at: float
    resubmitted: list[str] = dataclasses.field(default_factory=list)  # the jobs' stdout paths (else task ids)
    replacement: str | None = None  # the block job that took them

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Instance:
    """A Flux instance in a block: its job, URI and first node (rank 0: where its connection goes)."""

    job_id: str
    uri: str
    generation: int

    @property
    def host(self) -> str | None:
        parsed = urlparse(self.uri)
        return parsed.hostname if parsed.scheme == "ssh" else None


def reachable(host: str, port: int = 22, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the host accepts a connection on the port its instance's URI goes through (ssh).

    A name this side cannot resolve (ssh may know it from its config) is not a dead host: True.
    """
    try:
        sockets.create_connection((host, port), timeout=timeout).close()
    except sockets.gaierror:
        return True
    except OSError:
        return False
    return True


class Tracker:
    """The jobs in flight on the current instance, and whether (why) that instance is lost."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self.inflight: dict[str, Any] = {}  # task id -> the queued job (DirectJob)
        self.suspects: dict[str, tuple[float, BaseException]] = {}  # task id -> (when, exception)
        self.lost: str | None = None
        self.wake = threading.Event()

    def submitted(self, job: Any) -> int:
        with self.lock:
            self.inflight[job.task_id] = job
            return self.generation

    def current(self, generation: int) -> bool:
        return generation == self.generation

    def finished(self, job: Any, generation: int) -> bool:
        """The job's outcome may be set (False: it belongs to a lost instance, and is being run again)."""
        with self.lock:
            if generation != self.generation:
                return False
            self.inflight.pop(job.task_id, None)
            self.suspects.pop(job.task_id, None)
            return True

    def broken(self, job: Any, generation: int, exc: BaseException) -> None:
        with self.lock:
            if generation == self.generation:
                self.suspects[job.task_id] = (time.monotonic(), exc)
        self.wake.set()

    def lose(self, reason: str) -> None:
        with self.lock:
            self.lost = self.lost or reason
        self.wake.set()

    def unconfirmed(self, older_than: float) -> list[tuple[Any, BaseException]]:
        """Jobs whose connection broke that long ago while the instance still lives: their own failures."""
        now = time.monotonic()
        with self.lock:
            if self.lost:
                return []
            old = [t for t, (when, _) in self.suspects.items() if now - when > older_than]
            return [(self.inflight.pop(t), self.suspects.pop(t)[1]) for t in old]

    def next_instance(self) -> list[Any]:
        """The unfinished jobs of the lost instance, in submission order; late outcomes of it are ignored."""
        with self.lock:
            jobs = [j for j in self.inflight.values() if not j.future.done()]
            self.inflight.clear()
            self.suspects.clear()
            self.generation += 1
            self.lost = None
            return jobs


def watch(instance: Instance, provider: Any, tracker: Tracker, stop: threading.Event,
          alive: Callable[[str], bool] = reachable) -> None:
    """Until stop: the instance is lost when its block job ends or its first node stops answering."""
    last_status = 0.0
    while not stop.is_set() and tracker.current(instance.generation):
        reason = None
        if instance.host and not alive(instance.host):
            reason = f"its first node {instance.host} does not answer"
        elif time.monotonic() - last_status > STATUS_PERIOD or tracker.suspects:
            last_status = time.monotonic()
            try:
                status = provider.status([instance.job_id])[0]
            except Exception as err:  # noqa: BLE001 - a provider that cannot tell is not a lost block
                logger.warning("status of block job %s: %s", instance.job_id, err)
            else:
                if status.terminal:
                    reason = f"its block job ended ({status.state.name})"
        if reason:
            tracker.lose(reason)
            return
        tracker.wake.wait(WATCH_PERIOD)
        tracker.wake.clear()


@dataclasses.dataclass
class Launch:
    """How the executor starts an instance: what Parsl's own loop formats into the provider's command."""

    provider: Any
    launch_cmd: str
    flux_path: str
    manager: str  # Parsl's flux_instance_manager.py: the instance's initial program
    working_dir: str
    label: str  # the executor's, for the line said on stderr


def _wait_message(sock: Any, provider: Any, job_id: str) -> bytes:
    """The manager's next message, unless the block job ends first (as Parsl's own handshake does) or runs
    HANDSHAKE seconds without it (its first node lost while it started: with --no-kill the job runs on)."""
    running_since = None
    while not sock.poll(1000):
        status = provider.status([job_id])[0]
        if status.terminal:
            raise NoInstance(job_id)
        if status.state.name == "RUNNING":
            running_since = running_since or time.monotonic()
            if time.monotonic() - running_since > HANDSHAKE:
                raise NoInstance(job_id, f"ran {HANDSHAKE:g} s without its Flux instance answering")
    data: bytes = sock.recv()
    return data


def provision(launch: Launch, sock: Any, generation: int) -> Instance:
    """A block through the provider, the instance in it, its URI: Parsl's handshake with its manager."""
    launch.provider.script_dir = launch.working_dir
    command = launch.launch_cmd.format(port=sock.bind_to_random_port("tcp://*"), protocol="tcp",
                                       hostname=sockets.gethostname(), python=sys.executable,
                                       flux=launch.flux_path, manager=launch.manager)
    job_id = launch.provider.submit(command, 1)
    if not job_id:
        raise RuntimeError("the provider could not submit a block for the Flux instance")
    path = _wait_message(sock, launch.provider, job_id).decode()
    if path not in sys.path:
        sys.path.append(path)
    sock.send(b"ack")
    uri = _wait_message(sock, launch.provider, job_id).decode()
    return Instance(str(job_id), uri, generation)


@dataclasses.dataclass
class Loop:
    """The state of one executor's submission loop, across the instances it goes through."""

    launch: Launch
    submission_queue: queue.Queue
    stop: threading.Event
    dispatch: Callable[[Any, Any], None]  # (flux.job.FluxExecutor, queued job): submit it there
    tracker: Tracker
    flux_executor_kwargs: dict[str, Any]
    max_lost_blocks: int
    refit: Callable[[Any, list[LostBlock]], None] | None = None  # sizes/places the provider's next block
    alive: Callable[[str], bool] = reachable  # whether an instance's first node still answers
    events: Any = None  # a monitored run's JobEvents (workflows.flux.job_events): told of each instance served
    lost_blocks: list[LostBlock] = dataclasses.field(default_factory=list)
    serving: Instance | None = None  # the instance jobs go to now (a running job's cancel goes there)
    again: collections.deque = dataclasses.field(default_factory=collections.deque)

    def serve(self, first_socket: Any) -> None:
        """Instances one after another until the executor stops (or too many are lost: InstanceLost).

        Whatever ends the loop, no task is left waiting: Parsl's wrapper fails the queued ones, this the rest.
        """
        context = zmq.Context()
        try:
            self._serve(first_socket, context)
        except BaseException as err:
            for job in [*self.again, *self.tracker.next_instance()]:
                if not job.future.done():
                    job.future.set_exception(err)
            self.again.clear()
            raise
        finally:
            context.destroy(linger=0)

    def _serve(self, sock: Any, context: Any) -> None:
        first = sock
        while True:
            try:
                instance = provision(self.launch, sock, self.tracker.generation)
            except NoInstance as err:
                if not self.lost_blocks:
                    raise  # the first block: as in Parsl, the executor cannot start
                instance, lost = Instance(err.job_id, "", -1), str(err)
            else:
                if self.lost_blocks:
                    self.lost_blocks[-1].replacement = instance.job_id
                lost = self.serve_instance(instance, sock)  # type: ignore[assignment]
            if sock is not first:
                sock.close(linger=0)
            if lost is None:
                return
            self.replace(instance, lost)
            sock = context.socket(zmq.REP)

    def serve_instance(self, instance: Instance, sock: Any) -> str | None:
        """Submit to this instance until the executor stops (None) or the instance is lost (why)."""
        import flux.job

        watching = threading.Event()
        threading.Thread(target=watch, args=(instance, self.launch.provider, self.tracker, watching, self.alive),
                         name=f"flux-watch-{instance.job_id}", daemon=True).start()
        if self.events is not None:
            self.events.serving(instance.job_id, instance.uri, watching)
        fx = flux.job.FluxExecutor(handle_args=(instance.uri,), **self.flux_executor_kwargs)
        self.serving = instance
        try:
            while not self.stop.is_set() or not self.submission_queue.empty() or self.again:
                if self.tracker.lost:
                    fx.shutdown(wait=False)
                    return self.tracker.lost
                for job, exc in self.tracker.unconfirmed(CONFIRM):
                    job.future.set_exception(exc)
                job = self._next()
                if job is not None:
                    self.dispatch(fx, job)
            fx.shutdown(wait=True)
            if self.events is not None:
                self.events.drain(instance.job_id)  # the last jobs' finish events, before the instance goes
            if self.tracker.lost is None:
                sock.send(b"shutdown")
            return None
        finally:
            self.serving = None
            watching.set()

    def _next(self) -> Any:
        if self.again:
            return self.again.popleft()
        try:
            return self.submission_queue.get(timeout=0.05)
        except queue.Empty:
            return None

    def replace(self, instance: Instance, reason: str) -> None:
        """Record the loss, cancel the block, queue its unfinished jobs first; past the cap, fail them all."""
        jobs = self.tracker.next_instance()
        record = LostBlock(instance.job_id, instance.host, reason, time.time(),
                           [getattr(getattr(j.bash, "stdout", None), "path", None) or f"task {j.task_id}"
                            for j in jobs])
        self.lost_blocks.append(record)
        print(f"{self.launch.label}: Flux instance of block job {instance.job_id} lost ({reason}); "
              f"{len(jobs)} unfinished job(s) go to a new block", file=sys.stderr, flush=True)
        try:
            self.launch.provider.cancel([instance.job_id])
        except Exception as err:  # noqa: BLE001 - a block that cannot be cancelled is cleaned up at the end
            logger.warning("cancelling block job %s: %s", instance.job_id, err)
        if len(self.lost_blocks) > self.max_lost_blocks:
            error = InstanceLost(f"{len(self.lost_blocks)} Flux instances lost, more than max_lost_blocks="
                                 f"{self.max_lost_blocks} (the last: block job {instance.job_id}, {reason})")
            for job in [*self.again, *jobs]:
                job.future.set_exception(error)
            self.again.clear()
            raise error
        if self.refit is not None:
            self.refit(self.launch.provider, self.lost_blocks)
        self.again.extend(jobs)
