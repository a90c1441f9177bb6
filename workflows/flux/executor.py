"""DirectFluxExecutor: Parsl's FluxExecutor, with bash apps' commands run as the Flux job itself."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from parsl.executors import FluxExecutor

from . import parsl_seam, reprovision
from .bashjob import BashJob, bash_job, open_streams, outcome, timed_out
from .job_events import JobEvents

logger = logging.getLogger(__name__)

# flux.job.FluxExecutor picks up new jobs on a timer of poll_interval (0.1 s by default) and sleeps that
# long when idle: every submission waited up to 0.1 s. 10 ms keeps the reactor's wake-ups cheap.
POLL_INTERVAL = 0.01
BASH = "/bin/bash"
MAX_LOST_BLOCKS = 2  # Flux instances lost (and replaced) before the executor gives up as Parsl's does
CANCEL_WAIT = 30.0  # seconds a cancel() of a running job waits for Flux to end it


@dataclasses.dataclass(frozen=True)
class DirectJob:
    """A queued bash app job, in place of Parsl's own job record: no pickles, the BashJob instead.

    Parsl's submission loop only hands it to its per-job submit function (our dispatch, see
    parsl_seam.Internals.install_dispatch) or, when the instance failed, sets an exception on its .future.
    """

    future: Any
    task_id: str
    resource_spec: Mapping[str, Any]
    bash: BashJob
    monitored: tuple[int, int] | None = None  # the DFK's (task id, try id) when the run is monitored


def jobspec_args(job: BashJob, spec: Mapping[str, Any]) -> dict[str, Any]:
    """JobspecV1.from_command's arguments: the resources exactly as Parsl's own per-job submit reads them, and
    `exclusive` (with num_nodes: the job's nodes are its own, as `flux run --exclusive`), which Parsl's does not."""
    return {"command": [BASH, "-c", job.script()], "num_tasks": spec.get("num_tasks", 1),
            "num_nodes": spec.get("num_nodes"), "cores_per_task": spec.get("cores_per_task", 1),
            "gpus_per_task": spec.get("gpus_per_task"), "exclusive": bool(spec.get("exclusive", False))}


@dataclasses.dataclass
class Runtime:
    """The job's start and finish, from Flux's own events (their timestamps)."""

    start: float | None = None
    finish: float | None = None

    def record(self, _future: Any, event: Any) -> None:
        setattr(self, event.name, event.timestamp)

    @property
    def seconds(self) -> float | None:
        return None if self.start is None or self.finish is None else self.finish - self.start


def jobspec(job: DirectJob, working_dir: str) -> Any:
    """Parsl's jobspec for the job's resources, cwd, environment and job output files, running its script."""
    import flux.job

    spec = flux.job.JobspecV1.from_command(**jobspec_args(job.bash, job.resource_spec))
    spec.cwd = os.getcwd()
    spec.environment = dict(os.environ)
    spec.stdout = os.path.abspath(os.path.join(working_dir, f"{job.task_id}_stdout.txt"))
    spec.stderr = os.path.abspath(os.path.join(working_dir, f"{job.task_id}_stderr.txt"))
    if job.bash.walltime is not None:  # Flux's scheduler denies a sub-second duration (unsatisfiable):
        spec.duration = math.ceil(job.bash.walltime)  # whole seconds; the outcome checks the walltime itself
    return spec


def submit_direct(parsl: parsl_seam.Internals, flux_executor: Any, working_dir: str, job: DirectJob,
                  tracker: reprovision.Tracker | None = None, events: JobEvents | None = None) -> None:
    """Parsl's per-job submit for a bash app: same jobspec settings and locking, our command and outcome.

    tracker: the executor's jobs in flight, run again on a new instance if this one is lost.
    events: a monitored run's Flux job events, which tell Parsl's database where and when the job ran.
    """
    spec = jobspec(job, working_dir)
    flux_future = parsl.attach(job.future, lambda: flux_executor.submit(spec))
    if flux_future is None:
        return
    if events is not None and job.monitored is not None:
        events.track(flux_future, *job.monitored)
    generation = tracker.submitted(job) if tracker is not None else 0
    runtime = Runtime()
    for event in ("start", "finish"):  # both are in before the future is done (Flux sets them first)
        flux_future.add_event_callback(event, runtime.record)
    flux_future.add_done_callback(functools.partial(_complete, job, runtime, tracker, generation))


def _complete(queued: DirectJob, runtime: Runtime, tracker: reprovision.Tracker | None, generation: int,
              flux_future: Any) -> None:
    import flux.job

    job, future = queued.bash, queued.future
    if flux_future.cancelled():
        if tracker is not None:
            tracker.finished(queued, generation)
        return
    try:
        returncode = flux_future.result()
    except Exception as exc:  # noqa: BLE001
        if tracker is not None and not isinstance(exc, flux.job.JobException):
            tracker.broken(queued, generation, exc)  # the instance's connection, not the job: the watch decides
            return
        if tracker is not None and not tracker.finished(queued, generation):
            return
        if getattr(future, "cancel_wanted", False) and getattr(exc, "type", None) == "cancel":
            parsl_seam.Internals.mark_cancelled(future)
            return
        timeout = getattr(exc, "type", None) == "timeout" and job.walltime is not None
        future.set_exception(timed_out(job) if timeout else exc)
        return
    if tracker is not None and not tracker.finished(queued, generation):
        return
    try:
        future.set_result(outcome(job, returncode, runtime.seconds))
    except Exception as exc:  # noqa: BLE001 - AppTimeout, BashExitFailure, MissingOutputs
        future.set_exception(exc)


class DirectFluxExecutor(FluxExecutor):
    """Parsl's FluxExecutor; a bash app becomes `/bin/bash -c "<redirections>; <command>"` in every rank.

    Python apps, bash apps it cannot resolve on the submit side, and everything when the seam (parsl_seam)
    finds the installed Parsl changed, go through Parsl's stock path unchanged.
    """

    def __init__(self, provider: Any = None, working_dir: str | None = None, label: str = "FluxExecutor",
                 flux_executor_kwargs: Mapping[str, Any] = {}, flux_path: str | None = None,  # noqa: B006 - as Parsl
                 launch_cmd: str | None = None, poll_interval: float = POLL_INTERVAL,
                 max_lost_blocks: int = MAX_LOST_BLOCKS,
                 refit: Callable[[Any, list[reprovision.LostBlock]], None] | None = None,
                 alive: Callable[[str], bool] | None = None) -> None:
        super().__init__(provider=provider, working_dir=working_dir, label=label,
                         flux_executor_kwargs={"poll_interval": poll_interval, **flux_executor_kwargs},
                         flux_path=flux_path, launch_cmd=launch_cmd)
        self.flux_executor_kwargs = flux_executor_kwargs  # as given, for Parsl's repr of the config
        self.poll_interval = poll_interval
        self.max_lost_blocks = max_lost_blocks
        self.refit = refit  # sizes and places the provider's block that replaces a lost one
        self.alive = alive  # whether an instance's first node answers (default: its ssh port)
        self.tracker = reprovision.Tracker()
        self.loop: reprovision.Loop | None = None
        self.job_events: JobEvents | None = None  # with Parsl's monitoring: set up at start()
        internals, problems = parsl_seam.internals()
        self.seam_problems = problems + parsl_seam.executor_problems(self)
        self.internals = None if self.seam_problems else internals
        if self.internals is None:
            print(f"{label}: Parsl's FluxExecutor internals changed ({'; '.join(self.seam_problems)}): "
                  "every task takes Parsl's stock path, with Python in every rank", file=sys.stderr)
        else:
            self.internals.install_dispatch(DirectJob, functools.partial(submit_direct, self.internals))
            self.internals.install_loop(DirectFluxExecutor)
            # The DFK hands a monitored executor its monitoring queue through this radio (and refuses one without):
            # the executor itself sends each task's running and end, from Flux's job events (job_events).
            from parsl.monitoring.radios.multiprocessing import MultiprocessingQueueRadio

            self.remote_monitoring_radio = MultiprocessingQueueRadio()

    def start(self) -> None:
        if self.internals is not None and self.monitoring_messages is not None:
            self.job_events = JobEvents(self.monitoring_messages.put, str(self.run_id))
        super().start()

    @property
    def job_records(self) -> list[dict[str, Any]]:
        """A monitored run's Flux jobs: task, try, Flux job id, block, nodes, cores, times, exit status, exception."""
        return [r.as_dict() for r in self.job_events.records] if self.job_events is not None else []

    @property
    def direct(self) -> bool:
        return self.internals is not None

    @property
    def lost_blocks(self) -> list[reprovision.LostBlock]:
        """The instances lost so far, each with the jobs it cost and the block that took them."""
        return list(self.loop.lost_blocks) if self.loop is not None else []

    def serve(self, submission_queue: Any, stop_event: Any, socket: Any) -> None:
        """Parsl's submission thread, for the direct path: instances one after another (reprovision.Loop)."""
        assert self.internals is not None
        launch = reprovision.Launch(self.provider, self.launch_cmd, self.flux_path, self.internals.manager_path,
                                    self.working_dir, self.label)
        self.loop = reprovision.Loop(launch, submission_queue, stop_event, self._dispatch, self.tracker,
                                     {"poll_interval": self.poll_interval, **self.flux_executor_kwargs},
                                     self.max_lost_blocks, self.refit, self.alive or reprovision.reachable,
                                     self.job_events)
        self.loop.serve(socket)

    def _dispatch(self, flux_executor: Any, job: Any) -> None:
        assert self.internals is not None
        if isinstance(job, DirectJob):
            submit_direct(self.internals, flux_executor, self.working_dir, job, self.tracker, self.job_events)
        else:
            self.internals.submit_stock(flux_executor, self.working_dir, job)

    def submit(self, func: Callable, resource_specification: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """A monitored task comes wrapped by the DFK: unwrapped here (no Python runs in the ranks to report),
        its running and end come from Flux's events; a Python app then runs unwrapped too (its tries have
        no host: no resource monitoring under Flux)."""
        unwrapped = self.internals.unwrap_monitoring(func, kwargs) if self.internals is not None else None
        monitored = None
        if unwrapped is not None:
            func, kwargs, monitored = unwrapped[0], unwrapped[1], (unwrapped[2], unwrapped[3])
        job = bash_job(self.internals, func, args, kwargs) if self.internals is not None else None
        if self.internals is None or job is None or not open_streams(job):
            return super().submit(func, resource_specification, *args, **kwargs)
        spec = resource_specification or {}
        logger.debug("bash app %s runs directly in Flux", job.app)
        return self.internals.enqueue(self, lambda future, task_id: DirectJob(future, task_id, spec, job, monitored),
                                      self.cancel_running)

    def cancel_running(self, future: Any) -> bool:
        """A future's cancel() once Flux has its job: the job is cancelled (Flux kills every rank) and the call
        returns when it has ended, its nodes free; True when the future is then cancelled (False: the job ended
        first, or its instance is gone and the job waits to run again)."""
        import flux
        import flux.job

        assert self.internals is not None
        flux_future = self.internals.flux_future(future)
        serving = self.loop.serving if self.loop is not None else None
        if flux_future is None or serving is None or flux_future.done():
            return bool(future.cancelled())
        future.cancel_wanted = True
        try:
            jobid = flux_future.jobid(timeout=CANCEL_WAIT)
            handle = flux.Flux(serving.uri)
            flux.job.cancel(handle, jobid, "cancelled through its Parsl future")
            # Flux reports the cancel (the future's exception) before its ranks are gone: "clean" is after
            flux.job.event_wait(handle, jobid, "clean", raiseJobException=False)
        except Exception as err:  # noqa: BLE001 - the job ended, or its instance went: not cancelled
            logger.info("cancelling a running Flux job: %s", err)
            future.cancel_wanted = False
            return bool(future.cancelled())
        try:
            future.exception(timeout=CANCEL_WAIT)
        except BaseException:  # noqa: BLE001 - CancelledError, or the wait ran out: cancelled() says which
            pass
        return bool(future.cancelled())
