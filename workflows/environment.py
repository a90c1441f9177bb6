"""The ordered environment set-up ("module loads") every worker and task gets.

One list, one rule: miniconda3 is loaded last. A `spack load` after it puts
Spack's Python first on PATH and its site-packages on PYTHONPATH, and conda's
Python (the one with Parsl in it) then imports the wrong packages and breaks.
The scripts (build-env.sh, demo.sh) print their loads through this module too,
so the order lives in exactly one place.

python -m workflows.environment runs on the cluster's system python3 (build-env.sh, before conda
exists): this module parses on old Pythons (no annotations future) so that one older than 3.9 is
refused in one line, and its annotations are 3.9's (Optional, not X | None).
"""

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Optional

if __name__ == "__main__":  # python3 -m workflows.environment from the checkout: refuse a Python older than 3.9
    # in one line, before the imports below that need it. Imported by the run path (run.py loads the workflows
    # package alone, on conda's Python, where upstream is not importable) it is not needed: Parsl needs 3.10.
    from upstream.pythons import require_login_python

    require_login_python()

from projectdir import cli  # noqa: E402

from .errors import WorkflowsError  # noqa: E402

CONDA = "miniconda3"
DEFAULT_LOADS: tuple[str, ...] = ("openmpi", "flux-sched", CONDA)


class LoadOrderError(WorkflowsError, ValueError):
    """A load list that would break conda's Python."""

    refused = True


def _package(spec: str) -> str:
    """The package name of a spec such as 'miniconda3@24.7.1%gcc'."""
    name = spec.strip().split()[0] if spec.strip() else ""
    for sep in "@%+~^ ":
        name = name.split(sep)[0]
    return name


def check_order(loads: Sequence[str]) -> tuple[str, ...]:
    """Return the loads unchanged, or refuse an order that loads anything after miniconda3."""
    loads = tuple(loads)
    for i, spec in enumerate(loads):
        if not spec.strip():
            raise LoadOrderError("empty load spec")
        if _package(spec) == CONDA and i != len(loads) - 1:
            later = ", ".join(loads[i + 1 :])
            raise LoadOrderError(
                f"'{spec}' must be loaded last, but {later} comes after it: a later spack load "
                "puts Spack's Python first on PATH and its site-packages on PYTHONPATH, "
                "which breaks conda's Python"
            )
    return loads


def shell_lines(loads: Sequence[str], *, spack: bool = True, venv: Optional[str] = None) -> list[str]:
    """The shell commands that set up a worker's or task's environment, in order.

    With spack=False (tools already on PATH, as on the local cluster) no load is
    emitted; a virtualenv to activate goes last, in conda's place.
    """
    lines: list[str] = []
    if spack:
        lines += [f"spack load {spec}" for spec in check_order(loads)]
    if venv:
        lines.append(f". {shlex.quote(venv.rstrip('/') + '/bin/activate')}")
    return lines


def render(loads: Sequence[str], *, spack: bool = True, venv: Optional[str] = None) -> str:
    """shell_lines() joined for Parsl's worker_init or a task preamble."""
    return "\n".join(shell_lines(loads, spack=spack, venv=venv))


def current_venv() -> Optional[str]:
    """The virtualenv this interpreter runs in, if any (workers must use the same one)."""
    return sys.prefix if sys.prefix != getattr(sys, "base_prefix", sys.prefix) else None


def parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    parser = cli.Parser(
        prog=prog,
        description="Print the environment set-up lines (module loads), miniconda3 last.",
    )
    parser.add_argument("--load", action="append", metavar="SPEC",
                        help=f"a spec to spack-load, in order (default: {' '.join(DEFAULT_LOADS)})")
    parser.add_argument("--no-spack", action="store_true", help="emit no spack loads")
    parser.add_argument("--venv", help="a virtualenv to activate after the loads")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The console script parsl-mpi-environment and python3 -m workflows.environment."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    print(render(args.load or DEFAULT_LOADS, spack=not args.no_spack, venv=args.venv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
