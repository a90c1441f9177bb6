"""A bash app's invocation turned into what one Flux job runs, with the semantics of Parsl's bash apps.

Mirrors what Parsl's remote side does for a bash app: the app's function composes the command line,
the std streams are opened (made, truncated for File, appended otherwise) and the command is echoed to
stderr, and a finished job maps to the app's result or to Parsl's own exceptions. Whatever would take
a path of that function other than "command composed, streams opened" returns None: the stock path
then raises exactly what Parsl raises. Parsl's private names come through the seam (parsl_seam).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from parsl.app.errors import AppTimeout, BashExitFailure, MissingOutputs
from parsl.data_provider.files import File

if TYPE_CHECKING:
    from .parsl_seam import Internals


@dataclasses.dataclass(frozen=True)
class Stream:
    path: str
    mode: str  # "w" (a File: truncated) or Parsl's mode for a name ("a+" unless a (name, mode) tuple says)


@dataclasses.dataclass(frozen=True)
class BashJob:
    """What Parsl's remote side would do for one bash app call, decided on the submit side."""

    app: str
    command: str
    stdout: Stream | None
    stderr: Stream | None
    walltime: float | None
    outputs: tuple[Any, ...]  # File-likes with .filepath, checked after the job

    def script(self) -> str:
        """`/bin/bash -c` text: every rank appends to the streams (opened and echoed to once, on submit)."""
        redirects = [f"{fd}>>{shlex.quote(s.path)}" for fd, s in ((1, self.stdout), (2, self.stderr)) if s]
        return (f"exec {' '.join(redirects)}\n" if redirects else "") + self.command


def stream(parsl: Internals, fdname: str, spec: Any) -> Stream:
    if isinstance(spec, File):
        return Stream(os.fspath(spec), "w")
    return Stream(*parsl.std_fname_mode(fdname, spec))


def bash_job(parsl: Internals, func: Callable[..., Any], args: Sequence[Any],
             kwargs: Mapping[str, Any]) -> BashJob | None:
    """The job of a bash app call, or None where the stock path must run (and raise) instead."""
    user = parsl.user_function(func)
    if user is None:
        return None
    try:
        command = user(*args, **kwargs)
        out = stream(parsl, "stdout", kwargs["stdout"]) if kwargs.get("stdout") is not None else None
        err = stream(parsl, "stderr", kwargs["stderr"]) if kwargs.get("stderr") is not None else None
        outputs = tuple(kwargs.get("outputs", ()))
        for o in outputs:
            os.fspath(o.filepath)
    except Exception:  # noqa: BLE001 - the stock path raises Parsl's own exception for it
        return None
    walltime = kwargs.get("walltime")
    if not isinstance(command, str):
        return None
    if walltime is not None and (isinstance(walltime, bool) or not isinstance(walltime, (int, float))
                                 or walltime <= 0):
        return None
    return BashJob(getattr(user, "__name__", "bash_app"), command, out, err,
                   walltime, outputs)


def open_streams(job: BashJob) -> bool:
    """Make, open (truncating a File's) and echo the command to stderr, once; False: let the stock path fail."""
    handles = []
    try:
        for s in (job.stdout, job.stderr):
            if s is not None:
                if os.path.dirname(s.path):
                    os.makedirs(os.path.dirname(s.path), exist_ok=True)
                handles.append(open(s.path, s.mode))
    except Exception:  # noqa: BLE001 - a bad mode (ValueError) as much as a bad path: Parsl's BadStdStreamFile
        for h in handles:
            h.close()
        return False
    try:
        if job.stderr is not None:
            print(f"--> executable follows <--\n{job.command}\n--> end executable <--", file=handles[-1], flush=True)
    finally:
        for h in handles:
            h.close()
    return True


def outcome(job: BashJob, returncode: int, runtime: float | None = None) -> int:
    """The app's result for the job's exit status (the highest over its ranks), or Parsl's exception.

    runtime: the job's seconds from Flux's start to finish events. Over the walltime, it is AppTimeout
    whatever the exit status, as in Parsl (its wait times out first): Flux's own limit is whole seconds.
    """
    if job.walltime is not None and runtime is not None and runtime > job.walltime:
        raise timed_out(job)
    if returncode != 0:
        raise BashExitFailure(job.app, returncode)
    missing = [o for o in job.outputs if not os.path.exists(o.filepath)]
    if missing:
        raise MissingOutputs(f"Missing outputs from app {job.app}", missing)
    return returncode


def timed_out(job: BashJob) -> AppTimeout:
    return AppTimeout(f"App {job.app} exceeded walltime: {job.walltime} seconds")
