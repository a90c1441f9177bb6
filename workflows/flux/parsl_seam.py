"""The private Parsl names the direct path relies on, checked against the Parsl that is installed.

Parsl has no public hook for the command a FluxExecutor job runs, so the direct path reaches into
parsl.executors.flux.executor and the bash-app wrapper. Each check here names one such fact; any
problem sends every task through Parsl's stock path (see executor.DirectFluxExecutor).
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

JOBINFO_FIELDS = ("future", "task_id", "infile", "outfile", "resource_spec")
SUBMIT_SINGLE_PARAMS = ["flux_executor", "working_dir", "jobinfo"]
EXECUTOR_ATTRS = ("_submission_lock", "_stop_event", "_task_id_counter", "_submission_queue", "working_dir")
FUTURE_ATTRS = ("_flux_future", "_cancellation_lock")


def _module_problems(mod: ModuleType) -> list[str]:
    problems = []
    info = getattr(mod, "_FluxJobInfo", None)
    if getattr(info, "_fields", None) != JOBINFO_FIELDS:
        problems.append(f"_FluxJobInfo fields are not {JOBINFO_FIELDS}")
    single = getattr(mod, "_submit_single_job", None)
    if not callable(single) or list(inspect.signature(single).parameters) != SUBMIT_SINGLE_PARAMS:
        problems.append(f"_submit_single_job{tuple(SUBMIT_SINGLE_PARAMS)} is gone")
    loop = getattr(mod, "_submit_flux_jobs", None)
    if "_submit_single_job" not in getattr(getattr(loop, "__code__", None), "co_names", ()):
        problems.append("_submit_flux_jobs no longer calls the module's _submit_single_job")
    wrapper = getattr(mod, "FluxFutureWrapper", None)
    try:
        future = wrapper() if wrapper else None
    except Exception:  # noqa: BLE001 - any failure is a changed API
        future = None
    if future is None or any(not hasattr(future, a) for a in FUTURE_ATTRS):
        problems.append(f"FluxFutureWrapper has no {' / '.join(FUTURE_ATTRS)}")
    return problems


def _bash_app_problems() -> list[str]:
    from parsl.app.bash import BashApp

    from .bashjob import user_function

    def probe() -> str:
        return "true"

    try:
        wrapped = BashApp(probe).wrapped_remote_function
    except Exception as err:  # noqa: BLE001
        return [f"BashApp(...) fails outside a DataFlowKernel ({type(err).__name__})"]
    if user_function(wrapped) is not probe:
        return ["a bash app's wrapped_remote_function is no longer wrap_error(partial(remote_side_bash_executor, f))"]
    return []


def _error_problems() -> list[str]:
    from parsl.app import errors

    if list(inspect.signature(errors.BashExitFailure).parameters) != ["app_name", "exitcode"]:
        return ["BashExitFailure(app_name, exitcode) changed"]
    return []


def problems(mod: ModuleType | None = None) -> list[str]:
    """What no longer holds in the installed Parsl (empty: the direct path is safe)."""
    if mod is None:
        import parsl.executors.flux.executor as stock

        mod = stock
    return [*_module_problems(mod), *_bash_app_problems(), *_error_problems()]


def executor_problems(executor: Any) -> list[str]:
    """The FluxExecutor attributes submit() shares with Parsl's own submit(), missing on this instance."""
    missing = [a for a in EXECUTOR_ATTRS if not hasattr(executor, a)]
    return [f"FluxExecutor has no {', '.join(missing)}"] if missing else []
