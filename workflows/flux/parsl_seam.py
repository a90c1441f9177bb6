"""The one module that knows Parsl's private names: imported at first use, checked, else the stock path.

Parsl has no public hook for the command a FluxExecutor job runs, so the direct path reaches into
parsl.executors.flux.executor (its queue, job record, future wrapper and per-job submit function), the
bash-app wrapper (wrap_error(partial(remote_side_bash_executor, func))), get_std_fname_mode and the DFK's
monitoring wrapper (monitor_wrapper: a monitored task's function and its task and try ids). Nothing
of that is imported when this module is: internals() imports and checks every name when an executor
is made, and a name gone or changed is a line of its problems (the executor then sends every task
through Parsl's stock path), never an ImportError. No other module of the project names them
(tests/workflows/flux/test_parsl_seam.py scans the tree).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any

STOCK = "parsl.executors.flux.executor"
JOBINFO_FIELDS = ("future", "task_id", "infile", "outfile", "resource_spec")
SUBMIT_SINGLE_PARAMS = ["flux_executor", "working_dir", "jobinfo"]
SUBMIT_LOOP_PARAMS = ["submission_queue", "stop_event", "socket", "working_dir", "flux_executor_kwargs", "provider",
                      "executor", "flux_path", "launch_cmd"]
EXECUTOR_ATTRS = ("_submission_lock", "_stop_event", "_task_id_counter", "_submission_queue")
FUTURE_ATTRS = ("_flux_future", "_cancellation_lock")
# module: the names taken from it (functions and classes Parsl does not document for users)
MODULE_NAMES = {STOCK: ("_FluxJobInfo", "_submit_single_job", "_submit_flux_jobs", "_submit_wrapper",
                        "_MANAGER_PATH", "FluxFutureWrapper"),
                "parsl.app.bash": ("remote_side_bash_executor",), "parsl.app.errors": ("wrap_error",),
                "parsl.utils": ("get_std_fname_mode",), "parsl.monitoring.remote": ("monitor_wrapper",)}
MONITOR_WRAPPER_PARAMS = ["f", "args", "kwargs", "x_try_id", "x_task_id", "radio_config", "run_id", "logging_level",
                          "sleep_dur", "monitor_resources", "run_dir"]
TASK_RECORD_KEYS = ("exec_fu",)  # an AppFuture's task_record: the future of its current try
# Every private Parsl name the project uses, all of them here: what the tree scan looks for elsewhere.
PRIVATE_NAMES = (*(n for names in MODULE_NAMES.values() for n in names), *EXECUTOR_ATTRS, *FUTURE_ATTRS,
                 *TASK_RECORD_KEYS)


@dataclasses.dataclass(frozen=True)
class Internals:
    """Parsl's private names, imported and checked: what the direct path calls instead of naming them."""

    stock: ModuleType  # parsl.executors.flux.executor
    names: dict[str, Any]  # every name of MODULE_NAMES, by name

    def user_function(self, func: Callable[..., Any]) -> Callable[..., Any] | None:
        """The user's function inside a BashApp's wrapped_remote_function, or None for anything else."""
        if getattr(func, "__code__", None) is not self.wrapper_code:
            return None
        inner = getattr(func, "__wrapped__", None)
        if (not isinstance(inner, functools.partial) or inner.func is not self.names["remote_side_bash_executor"]
                or len(inner.args) != 1 or inner.keywords):
            return None
        user: Callable[..., Any] = inner.args[0]
        return user

    @functools.cached_property
    def wrapper_code(self) -> CodeType:
        """The code of every wrap_error()'d function."""
        code: CodeType = self.names["wrap_error"](_probe).__code__
        return code

    def std_fname_mode(self, fdname: str, spec: Any) -> tuple[str, str]:
        """Parsl's (path, mode) for a stream given as a name or a (name, mode) tuple; raises as Parsl's does."""
        name, mode = self.names["get_std_fname_mode"](fdname, spec)
        return str(name), str(mode)

    def enqueue(self, executor: Any, job: Callable[[Any, str], Any],
                cancel_running: Callable[[Any], bool] | None = None) -> Any:
        """Queue job(future, task_id) for Parsl's submission thread, under its lock, as its submit() does.

        cancel_running(future): what the future's cancel() does once Flux has the job (Parsl's returns False
        then, and the job runs on): it ends the job; True when the future is then cancelled.
        """
        with executor._submission_lock:
            if executor._stop_event.is_set():
                raise RuntimeError("`shutdown()` already called")
            task_id = str(next(executor._task_id_counter))
            future = self.future_class()
            future.cancel_running = cancel_running
            executor._submission_queue.put(job(future, task_id))
            return future

    @functools.cached_property
    def future_class(self) -> type:
        """Parsl's FluxFutureWrapper, whose cancel() also ends a job Flux already has (its cancel_running)."""
        base: type = self.names["FluxFutureWrapper"]

        class RunningCancellable(base):
            cancel_running: Callable[[Any], bool] | None = None

            def cancel(self) -> bool:
                if super().cancel():
                    return True
                if self.done() or self.cancel_running is None:
                    return bool(self.cancelled())
                return self.cancel_running(self)

        RunningCancellable.__qualname__ = RunningCancellable.__name__ = base.__name__
        return RunningCancellable

    @staticmethod
    def flux_future(future: Any) -> Any:
        """The Flux future behind a future of ours (None while Flux does not have the job yet)."""
        with future._cancellation_lock:
            return future._flux_future

    @staticmethod
    def mark_cancelled(future: Any) -> None:
        """A future whose Flux job ended by our cancel reports cancelled, as Parsl's does for a queued one."""
        import concurrent.futures

        with future._cancellation_lock:
            if concurrent.futures.Future.cancel(future):
                future.set_running_or_notify_cancel()

    def attach(self, future: Any, submit: Callable[[], Any]) -> Any:
        """submit() to Flux unless the future was cancelled; link the Flux future under Parsl's lock.

        None: cancelled, or the submission failed (then the future holds its exception, as in Parsl).
        """
        with future._cancellation_lock:
            if future.cancelled():
                return None
            try:
                flux_future = submit()
            except Exception as exc:  # noqa: BLE001 - as Parsl: a broken instance fails the task
                future.set_exception(exc)
                return None
            future._flux_future = flux_future
        return flux_future

    @functools.cached_property
    def monitoring_probe(self) -> tuple[CodeType, str, str]:
        """The code of the DFK's monitor_wrapper()'d functions, and the kwargs that carry the task and try ids
        (found by wrapping a probe with distinct ids: no key name is spelled here)."""
        wrapped, _, kwargs = self.names["monitor_wrapper"](
            f=_probe, args=(), kwargs={}, x_try_id=-2, x_task_id=-1, radio_config=None, run_id="", logging_level=0,
            sleep_dur=0, monitor_resources=False, run_dir="")
        ids = {value: key for key, value in kwargs.items()}
        return wrapped.__code__, ids[-1], ids[-2]

    def unwrap_monitoring(self, func: Callable[..., Any], kwargs: dict[str, Any]
                          ) -> tuple[Callable[..., Any], dict[str, Any], int, int] | None:
        """(the app's own function, its kwargs, task id, try id) of a task the DFK wrapped for monitoring, else None.

        The executor then reports the task's running and end itself, from Flux's job events.
        """
        code, task_key, try_key = self.monitoring_probe
        inner = getattr(func, "__wrapped__", None)
        if getattr(func, "__code__", None) is not code or inner is None or task_key not in kwargs:
            return None
        rest = {k: v for k, v in kwargs.items() if k not in (task_key, try_key)}
        return inner, rest, int(kwargs[task_key]), int(kwargs[try_key])

    @property
    def manager_path(self) -> str:
        """Parsl's flux_instance_manager.py: the initial program of every instance its FluxExecutor starts."""
        return str(self.names["_MANAGER_PATH"])

    def submit_stock(self, flux_executor: Any, working_dir: str, jobinfo: Any) -> None:
        """Parsl's own per-job submit, for a job of its stock path."""
        self.names["_submit_single_job"](flux_executor, working_dir, jobinfo)

    def install_loop(self, ours: type) -> None:
        """Parsl's submission thread runs `executor.serve(queue, stop_event, socket)` for an executor of ours.

        Parsl's thread (_submit_wrapper) calls the module's _submit_flux_jobs by name, and fails every
        queued task if it raises: the loop is replaced there, its error handling kept.
        """
        original = self.names["_submit_flux_jobs"]
        if getattr(self.stock._submit_flux_jobs, "direct_loop", False):
            return

        @functools.wraps(original)
        def _submit_flux_jobs(submission_queue: Any, stop_event: Any, socket: Any, *args: Any) -> None:
            executor = args[SUBMIT_LOOP_PARAMS.index("executor") - 3]
            serve = getattr(executor, "serve", None) if isinstance(executor, ours) else None
            if serve is not None and getattr(executor, "direct", False):
                return serve(submission_queue, stop_event, socket)
            return original(submission_queue, stop_event, socket, *args)

        _submit_flux_jobs.direct_loop = True  # type: ignore[attr-defined]
        setattr(self.stock, "_submit_flux_jobs", _submit_flux_jobs)  # noqa: B010 - a module's global, replaced

    def install_dispatch(self, ours: type, submit: Callable[[Any, str, Any], None]) -> None:
        """Route queued `ours` jobs to submit() in Parsl's submission thread; every other job to Parsl's own."""
        original = self.names["_submit_single_job"]
        if getattr(original, "direct_dispatch", False):
            return

        @functools.wraps(original)
        def _submit_single_job(flux_executor: Any, working_dir: str, jobinfo: Any) -> None:
            if isinstance(jobinfo, ours):
                return submit(flux_executor, working_dir, jobinfo)
            return original(flux_executor, working_dir, jobinfo)

        _submit_single_job.direct_dispatch = True  # type: ignore[attr-defined]
        setattr(self.stock, "_submit_single_job", _submit_single_job)  # noqa: B010 - a module's global, replaced
        self.names["_submit_single_job"] = _submit_single_job


def executor_future(app_future: Any) -> Any:
    """The executor's future of an AppFuture's current try (None before the DFK launched it, or after Parsl moved
    it): Parsl has no public name for it."""
    record = getattr(app_future, "task_record", None)
    return record.get(TASK_RECORD_KEYS[0]) if isinstance(record, dict) else None


def _probe() -> str:
    return "true"


def _imported() -> tuple[ModuleType | None, dict[str, Any], list[str]]:
    """Every name of MODULE_NAMES, imported now; a line per module or name that is not there."""
    names: dict[str, Any] = {}
    problems: list[str] = []
    modules: dict[str, ModuleType] = {}
    for module, wanted in MODULE_NAMES.items():
        try:
            modules[module] = importlib.import_module(module)
        except Exception as err:  # noqa: BLE001 - any failure is a changed Parsl
            problems.append(f"{module} does not import ({type(err).__name__})")
            continue
        for name in wanted:
            if hasattr(modules[module], name):
                names[name] = getattr(modules[module], name)
            else:
                problems.append(f"{module}.{name} is gone")
    return modules.get(STOCK), names, problems


def _module_problems(names: dict[str, Any]) -> list[str]:
    problems = []
    if getattr(names.get("_FluxJobInfo"), "_fields", None) != JOBINFO_FIELDS:
        problems.append(f"_FluxJobInfo fields are not {JOBINFO_FIELDS}")
    single = names.get("_submit_single_job")
    if not callable(single) or list(inspect.signature(single).parameters) != SUBMIT_SINGLE_PARAMS:
        problems.append(f"_submit_single_job{tuple(SUBMIT_SINGLE_PARAMS)} is gone")
    loop = inspect.unwrap(names["_submit_flux_jobs"]) if callable(names.get("_submit_flux_jobs")) else None
    if "_submit_single_job" not in getattr(getattr(loop, "__code__", None), "co_names", ()):
        problems.append("_submit_flux_jobs no longer calls the module's _submit_single_job")
    if loop is None or list(inspect.signature(loop).parameters) != SUBMIT_LOOP_PARAMS:
        problems.append(f"_submit_flux_jobs{tuple(SUBMIT_LOOP_PARAMS)} changed")
    if "_submit_flux_jobs" not in getattr(getattr(names.get("_submit_wrapper"), "__code__", None), "co_names", ()):
        problems.append("_submit_wrapper no longer calls the module's _submit_flux_jobs")
    if not isinstance(names.get("_MANAGER_PATH"), str):
        problems.append("_MANAGER_PATH is not the path of Parsl's flux instance manager")
    try:
        future = names["FluxFutureWrapper"]()
    except Exception:  # noqa: BLE001 - any failure is a changed API
        future = None
    if future is None or any(not hasattr(future, a) for a in FUTURE_ATTRS):
        problems.append(f"FluxFutureWrapper has no {' / '.join(FUTURE_ATTRS)}")
    wrapper = names.get("monitor_wrapper")
    if not callable(wrapper) or list(inspect.signature(wrapper).parameters) != MONITOR_WRAPPER_PARAMS:
        problems.append(f"monitor_wrapper{tuple(MONITOR_WRAPPER_PARAMS)} changed")
    return problems


def _monitoring_problems(internals: Internals) -> list[str]:
    try:
        _, task_key, try_key = internals.monitoring_probe
        unwrapped = internals.unwrap_monitoring(*internals.names["monitor_wrapper"](
            f=_probe, args=(), kwargs={"x": 1}, x_try_id=3, x_task_id=7, radio_config=None, run_id="",
            logging_level=0, sleep_dur=0, monitor_resources=False, run_dir="")[::2])
    except Exception as err:  # noqa: BLE001 - any failure is a changed monitor_wrapper
        return [f"a monitored task's wrapper cannot be read ({type(err).__name__})"]
    if unwrapped != (_probe, {"x": 1}, 7, 3) or task_key == try_key:
        return ["a monitored task is no longer monitor_wrapper's wraps(f) with its task and try ids in its kwargs"]
    return []


def _bash_app_problems(internals: Internals) -> list[str]:
    from parsl.app.bash import BashApp
    from parsl.app.errors import BashExitFailure

    try:
        wrapped = BashApp(_probe).wrapped_remote_function
        recognised = internals.user_function(wrapped) is _probe
    except Exception as err:  # noqa: BLE001
        return [f"a bash app's wrapper cannot be read outside a DataFlowKernel ({type(err).__name__})"]
    problems = [] if recognised else [
        "a bash app's wrapped_remote_function is no longer wrap_error(partial(remote_side_bash_executor, f))"]
    if list(inspect.signature(BashExitFailure).parameters) != ["app_name", "exitcode"]:
        problems.append("BashExitFailure(app_name, exitcode) changed")
    return problems


def internals() -> tuple[Internals | None, list[str]]:
    """Parsl's private names, imported and checked now; (None, what no longer holds) if any changed."""
    stock, names, problems = _imported()
    if stock is None or problems:
        return None, problems
    found = Internals(stock, names)
    problems = _module_problems(names) + _bash_app_problems(found)
    problems += _monitoring_problems(found) if not problems else []
    return (None, problems) if problems else (found, [])


def executor_problems(executor: Any) -> list[str]:
    """The FluxExecutor attributes the direct submit shares with Parsl's own submit(), missing here."""
    missing = [a for a in (*EXECUTOR_ATTRS, "working_dir") if not hasattr(executor, a)]
    return [f"FluxExecutor has no {', '.join(missing)}"] if missing else []
