"""The two apps every variant runs: compile the MPI program once, then one MPI run."""

from __future__ import annotations

import shlex

from parsl.app.app import bash_app

from .placement import stamp


def compile_line(cc: str, source: str, binary: str) -> str:
    return f"{shlex.quote(cc)} -O2 -o {shlex.quote(binary)} {shlex.quote(source)}"


TIMED_OUT = 124  # coreutils timeout's exit status


def run_line(command: str, timeout: float, *, stamped: bool = True) -> str:
    """The MPI run between start and end stamps, keeping its exit status.

    `timeout` ends a hung run itself: Parsl's bash_app walltime raises but leaves the process
    running on the nodes, where a retry would then overlap it. stamped=False where the launcher
    stamps inside the MPI job itself (its interval is then the job's, not the wrapper's).
    """
    timed = f"timeout --kill-after=5 {timeout:g} {command}"
    if not stamped:
        return timed
    return f"{stamp('start')}; {timed}; rc=$?; {stamp('end')}; exit $rc"


@bash_app
def compile_mpi(line: str, stdout: str | None = None, stderr: str | None = None,
                parsl_resource_specification: dict | None = None) -> str:
    return line


@bash_app
def mpi_run(line: str, stdout: str | None = None, stderr: str | None = None,
            walltime: float | None = None, parsl_resource_specification: dict | None = None) -> str:
    return line
