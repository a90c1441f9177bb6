"""The ordered environment set-up ("module loads") every worker and task gets.

One list, one rule: miniconda3 is loaded last. A `spack load` after it puts
Spack's Python first on PATH and its site-packages on PYTHONPATH, and conda's
Python (the one with Parsl in it) then imports the wrong packages and breaks.
The scripts (build-env.sh, demo.sh) print their loads through this module too,
so the order lives in exactly one place.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

CONDA = "miniconda3"
DEFAULT_LOADS: tuple[str, ...] = ("openmpi", "flux-sched", CONDA)


class LoadOrderError(ValueError):
    """A load list that would break conda's Python."""


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


def shell_lines(loads: Sequence[str], *, spack: bool = True, venv: str | None = None) -> list[str]:
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


def render(loads: Sequence[str], *, spack: bool = True, venv: str | None = None) -> str:
    """shell_lines() joined for Parsl's worker_init or a task preamble."""
    return "\n".join(shell_lines(loads, spack=spack, venv=venv))


def current_venv() -> str | None:
    """The virtualenv this interpreter runs in, if any (workers must use the same one)."""
    return sys.prefix if sys.prefix != getattr(sys, "base_prefix", sys.prefix) else None


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m workflows.environment",
        description="Print the environment set-up lines (module loads), miniconda3 last.",
    )
    parser.add_argument("--load", action="append", metavar="SPEC",
                        help=f"a spec to spack-load, in order (default: {' '.join(DEFAULT_LOADS)})")
    parser.add_argument("--no-spack", action="store_true", help="emit no spack loads")
    parser.add_argument("--venv", help="a virtualenv to activate after the loads")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(render(args.load or DEFAULT_LOADS, spack=not args.no_spack, venv=args.venv))
    except LoadOrderError as err:
        print(f"environment: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
