"""python3 -m upstream install [flux] [spack] | env | status: the pinned Flux and Spack, built once per machine.

Sources come from the mirror named by $PARSL_MPI_STACK_SOURCES (or --sources), else from upstream
(checked). Builds go to $PARSL_MPI_STACK_PREFIX (default /opt/parsl-mpi-stack as root). Where no
source can be reached, install says so in one line and exits 0 (1 with --require, as CI does).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from projectdir import cli

from . import flux, layout, sources, spack
from .pins import PinError, flux_sources

NOT_REACHABLE = cli.FAILED  # with --require: CI may skip nothing
# each build: where it is when built, how to build it, the sources it needs
BUILDS = {"flux": (flux.installed, flux.install, flux_sources),
          "spack": (spack.installed, spack.install, spack.spack_sources_for_install)}


def _install(what: Sequence[str], mirror: Path | None, require: bool) -> int:
    root = layout.prefix()
    for name in what:
        installed, install, wanted = BUILDS[name]
        done = installed(root)
        if done:
            install(root, mirror=mirror)  # a second of locking: rewrites only what holds no build (bin/spack)
            print(f"upstream: {name} is installed at {done}", file=sys.stderr)
            continue
        missing = sources.reachable(wanted(), mirror)
        if missing:
            print(f"upstream: {name} not built: {missing}", file=sys.stderr)
            if require:
                return NOT_REACHABLE
            continue
        folder = install(root, mirror=mirror)
        print(f"upstream: {name} installed at {folder}", file=sys.stderr)
    return 0


def env_lines(root: Path) -> list[str]:
    """Shell lines that put the installed builds first on PATH (nothing for what is not built)."""
    paths = []
    for installed, _, _ in BUILDS.values():
        try:
            folder = installed(root)
        except PinError:  # the project's pins cannot name this build: nothing of it on PATH
            folder = None
        if folder:
            paths.append(str(folder / "bin"))
    if not paths:
        return []
    return [f"export PATH={shlex.quote(os.pathsep.join(paths))}${{PATH:+:$PATH}}"]


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="build what is not built yet (default: flux spack)")
    inst.add_argument("what", nargs="*", metavar="flux|spack", help="what to build (default: both)")
    inst.add_argument("--sources", type=Path, default=sources.mirror_from_env(),
                      help=f"a source mirror folder (default ${sources.MIRROR_ENV})")
    inst.add_argument("--require", action="store_true",
                      help=f"exit {NOT_REACHABLE} when sources cannot be reached (CI: nothing may be skipped)")
    sub.add_parser("env", help="print the shell lines that put the builds on PATH")
    sub.add_parser("status", help="what is built, where")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-upstream and python3 -m upstream."""
    return cli.run(lambda prog: _main(parser(prog), argv))


def _main(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = p.parse_args(argv)
    unknown = [w for w in getattr(args, "what", None) or [] if w not in BUILDS]
    if unknown:
        p.error(f"install: unknown {', '.join(unknown)} (choose from {', '.join(BUILDS)})")
    if args.command == "install":
        return _install(args.what or list(BUILDS), args.sources, args.require)
    if args.command == "env":
        print("\n".join(env_lines(layout.prefix())))
        return 0
    root = layout.prefix()
    print(f"prefix {root}")
    for name, (installed, _, _) in BUILDS.items():
        print(f"{name:<6} {installed(root) or 'not built'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
