"""DirectFluxExecutor: Parsl's FluxExecutor, with bash apps' commands run as the Flux job itself."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import parsl.executors.flux.executor as stock
from parsl.executors import FluxExecutor

from . import guard
from .bashjob import BashJob, bash_job, open_streams, outcome, timed_out

logger = logging.getLogger(__name__)

# flux.job.FluxExecutor picks up new jobs on a timer of poll_interval (0.1 s by default) and sleeps that
# long when idle: every submission waited up to 0.1 s. 10 ms keeps the reactor's wake-ups cheap.
POLL_INTERVAL = 0.01
BASH = "/bin/bash"


@dataclasses.dataclass(frozen=True)
class _DirectJobInfo:
    """A queued bash app job, in place of Parsl's _FluxJobInfo: no pickles, the BashJob instead.

    Parsl's submission loop only hands it to _submit_single_job (our dispatch) or, when the instance
    failed, sets an exception on its .future.
    """

    future: Any
    task_id: str
    resource_spec: Mapping[str, Any]
    bash: BashJob


def jobspec_args(job: BashJob, spec: Mapping[str, Any]) -> dict[str, Any]:
    """JobspecV1.from_command's arguments: the resources exactly as Parsl's _submit_single_job reads them."""
    return {"command": [BASH, "-c", job.script()], "num_tasks": spec.get("num_tasks", 1),
            "num_nodes": spec.get("num_nodes"), "cores_per_task": spec.get("cores_per_task", 1),
            "gpus_per_task": spec.get("gpus_per_task")}


def _submit_direct(flux_executor: Any, working_dir: str, jobinfo: _DirectJobInfo) -> None:
    """Parsl's _submit_single_job for a bash app: same cwd, environment, job output files and locking."""
    import flux.job

    jobspec = flux.job.JobspecV1.from_command(**jobspec_args(jobinfo.bash, jobinfo.resource_spec))
    jobspec.cwd = os.getcwd()
    jobspec.environment = dict(os.environ)
    jobspec.stdout = os.path.abspath(os.path.join(working_dir, f"{jobinfo.task_id}_stdout.txt"))
    jobspec.stderr = os.path.abspath(os.path.join(working_dir, f"{jobinfo.task_id}_stderr.txt"))
    if jobinfo.bash.walltime is not None:
        jobspec.duration = jobinfo.bash.walltime
    with jobinfo.future._cancellation_lock:
        if jobinfo.future.cancelled():
            return
        try:
            flux_future = flux_executor.submit(jobspec)
        except Exception as exc:  # noqa: BLE001 - as Parsl: a broken instance fails the task
            jobinfo.future.set_exception(exc)
            return
        jobinfo.future._flux_future = flux_future
    flux_future.add_done_callback(functools.partial(_complete, jobinfo.bash, jobinfo.future))


def _complete(job: BashJob, future: Any, flux_future: Any) -> None:
    if flux_future.cancelled():
        return
    try:
        returncode = flux_future.result()
    except Exception as exc:  # noqa: BLE001
        timeout = getattr(exc, "type", None) == "timeout" and job.walltime is not None
        future.set_exception(timed_out(job) if timeout else exc)
        return
    try:
        future.set_result(outcome(job, returncode))
    except Exception as exc:  # noqa: BLE001 - BashExitFailure, MissingOutputs
        future.set_exception(exc)


def _dispatch(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def _submit_single_job(flux_executor: Any, working_dir: str, jobinfo: Any) -> None:
        if isinstance(jobinfo, _DirectJobInfo):
            return _submit_direct(flux_executor, working_dir, jobinfo)
        return original(flux_executor, working_dir, jobinfo)

    _submit_single_job.direct_dispatch = True  # type: ignore[attr-defined]
    return _submit_single_job


def _install_dispatch() -> None:
    """Route our jobs in Parsl's submission thread; every other job goes to Parsl's function, as before."""
    if not getattr(stock._submit_single_job, "direct_dispatch", False):
        stock._submit_single_job = _dispatch(stock._submit_single_job)


class DirectFluxExecutor(FluxExecutor):
    """Parsl's FluxExecutor; a bash app becomes `/bin/bash -c "<redirections>; <command>"` in every rank.

    Python apps, bash apps it cannot resolve on the submit side, and everything when the guard finds
    the pinned Parsl changed, go through Parsl's stock path unchanged.
    """

    def __init__(self, provider: Any = None, working_dir: str | None = None, label: str = "FluxExecutor",
                 flux_executor_kwargs: Mapping[str, Any] = {}, flux_path: str | None = None,  # noqa: B006 - as Parsl
                 launch_cmd: str | None = None, poll_interval: float = POLL_INTERVAL) -> None:
        super().__init__(provider=provider, working_dir=working_dir, label=label,
                         flux_executor_kwargs={"poll_interval": poll_interval, **flux_executor_kwargs},
                         flux_path=flux_path, launch_cmd=launch_cmd)
        self.flux_executor_kwargs = flux_executor_kwargs  # as given, for Parsl's repr of the config
        self.poll_interval = poll_interval
        self.guard_problems = guard.problems() + guard.executor_problems(self)
        if self.guard_problems:
            print(f"{label}: Parsl's FluxExecutor internals changed ({'; '.join(self.guard_problems)}): "
                  "every task takes Parsl's stock path, with Python in every rank", file=sys.stderr)
        else:
            _install_dispatch()

    @property
    def direct(self) -> bool:
        return not self.guard_problems

    def submit(self, func: Callable, resource_specification: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job = bash_job(func, args, kwargs) if self.direct else None
        if job is None or not open_streams(job):
            return super().submit(func, resource_specification, *args, **kwargs)
        with self._submission_lock:
            if self._stop_event.is_set():
                raise RuntimeError("`shutdown()` already called")
            task_id = str(next(self._task_id_counter))
            future = stock.FluxFutureWrapper()
            self._submission_queue.put(_DirectJobInfo(future, task_id, resource_specification or {}, job))
            logger.debug("task %s: bash app %s runs directly in Flux", task_id, job.app)
            return future
