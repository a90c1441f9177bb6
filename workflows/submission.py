"""The run's third step: every app submitted at once, each after what it needs (Parsl's inputs).

The two apps every variant runs: compile the MPI program once, then an MPI run; the hello world's runs wait
for the compile, the user's program's runs (--command) for the hello world's with --probe. Parsl starts each
when what it needs is done, and a failed need fails it (DependencyError: workflows/stall.py names it).
The user's program runs under a small sh wrapper that first writes where its rank runs (outputs.WHERE reads it):
the launcher's rank, the node's hostname, the CPUs the rank may use; it then execs the program in its place,
so the program keeps the rank launcher's environment (MPI's included) and its affinity.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from parsl.app.app import bash_app

from .launchers import compiler
from .placement import stamp
from .settings import Settings
from .variants.base import Variant

TIMED_OUT = 124  # coreutils timeout's exit status
COMMAND_WRAPPER = "command.sh"  # in the run directory: what each rank of the user's program runs
# The rank as each launcher names it: Open MPI, MPICH's Hydra (and Flux's PMI), PMIx, Flux itself.
RANK_VARIABLE = "${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-${PMIX_RANK:-${FLUX_TASK_RANK:-?}}}}"


@dataclasses.dataclass(frozen=True)
class Submitted:
    """The run's apps' futures: the compile (None when only the user's program runs), then runs by index."""

    compiled: Future | None
    runs: dict[int, Future]  # the hello world's
    commands: dict[int, Future]  # the user's program's


def submit_all(s: Settings, variant: Variant, source: Path) -> Submitted:
    """The hello world's compile and runs, or with s.command the user's program's runs (after the hello world's
    with s.probe), outputs in RUN_DIR/outputs (made anew: bash apps append)."""
    out = s.outputs
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    hello = not s.command or s.probe
    compiled = compile_mpi(compile_line(compiler(s.mpi), str(source), str(s.run_dir / "mpi_hello")),
                           stdout=str(out / "compile.out"), stderr=str(out / "compile.err"),
                           **_spec(variant.compile_resources(s))) if hello else None
    runs = _runs(s, variant, str(s.run_dir / "mpi_hello"), out / "run", [compiled]) if hello else {}
    if not s.command:
        return Submitted(compiled, runs, {})
    program = write_wrapper(s.run_dir / COMMAND_WRAPPER, s.command, Path.cwd())
    return Submitted(compiled, runs, _runs(s, variant, str(program), out / "command", list(runs.values())))


def _runs(s: Settings, variant: Variant, program: str, stem: Path, after: list[Future | None]) -> dict[int, Future]:
    """Every run of program with the variant's launch line and resources, outputs in STEM-I.out and .err, each
    started once every future in `after` is done."""
    line = run_line(variant.run_command(s, program), s.run_timeout, stamped=variant.wrapper_stamps(s))
    inputs = [f for f in after if f is not None]
    return {i: mpi_run(line, stdout=f"{stem}-{i}.out", stderr=f"{stem}-{i}.err", walltime=s.run_timeout + 30,
                       inputs=inputs, **_spec(variant.run_resources(s)))
            for i in range(s.repeats)}


def _spec(resources: dict | None) -> dict:
    return {} if resources is None else {"parsl_resource_specification": resources}


def compile_line(cc: str, source: str, binary: str) -> str:
    return f"{shlex.quote(cc)} -O2 -o {shlex.quote(binary)} {shlex.quote(source)}"


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


def wrapper(words: Sequence[str], cwd: Path) -> str:
    """The sh script one rank runs: the line that says where, then the program, in cwd (where the run was started)."""
    return ("#!/bin/sh\n"
            "# One rank of the user's MPI program: where it runs (read back by workflows/outputs.py), then\n"
            "# the program in this process's place, so it keeps the launcher's environment and CPU binding.\n"
            f'echo "# rank {RANK_VARIABLE} $(hostname) '
            "$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)\"\n"
            f"cd {shlex.quote(str(cwd))} || exit 126\n"
            f"exec {shlex.join(words)}\n")


def write_wrapper(path: Path, words: Sequence[str], cwd: Path) -> Path:
    """The wrapper as an executable file the nodes can run (it must be on a filesystem they see)."""
    path.write_text(wrapper(words, cwd))
    path.chmod(0o755)
    return path


@bash_app
def compile_mpi(line: str, stdout: str | None = None, stderr: str | None = None,
                parsl_resource_specification: dict | None = None) -> str:
    return line


@bash_app
def mpi_run(line: str, stdout: str | None = None, stderr: str | None = None, walltime: float | None = None,
            parsl_resource_specification: dict | None = None, inputs: Sequence[Any] = ()) -> str:
    """One MPI run's bash line; inputs: futures it waits for (Parsl starts it once they are done)."""
    return line
