"""python -m workflows run VARIANT [options] | clean | visualize RUN_DIR: the MPI hello world through one
Parsl executor variant on Slurm, the run directories it leaves, and a monitored run's record.

`python workflows/run.py ...` is the same command with `run` implied (the design's command).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from projectdir import cli

from . import environment, monitoring, runner, session, variants
from .launchers import MPI_FLAVOURS, RANK_LAUNCHERS
from .settings import SOURCE, Settings


def _default(name: str) -> Any:
    """A Settings field's default: the CLI never keeps a second copy."""
    return next(f.default for f in dataclasses.fields(Settings) if f.name == name)


def _launcher_help() -> str:
    per_variant = "; ".join(f"{v.name}: {', '.join(v.rank_launchers)}" for v in variants.REGISTRY.values())
    return (f"how each MPI run's ranks start, one of {', '.join(RANK_LAUNCHERS)} (the variant's first by default; "
            f"{per_variant})")


def _add_variant_options(p: argparse.ArgumentParser) -> None:
    """Each variant's own options (variants/base.py Option), in a group named after it; given to another
    variant, one is refused in one line (variants.checked)."""
    groups: dict[str, Any] = {}
    for variant, o in variants.options():
        group = groups.get(variant.name) or groups.setdefault(variant.name, p.add_argument_group(
            f"options of the {variant.name} variant"))
        group.add_argument(o.flag, dest=o.field, choices=o.choices, help=f"{o.help} (default {o.default})")


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    d = _default
    p.add_argument("variant", choices=variants.REGISTRY, metavar="VARIANT",
                   help=f"executor variant: {', '.join(variants.REGISTRY)}")
    p.add_argument("--repeats", type=int, default=d("repeats"), help="MPI runs (default %(default)s)")
    p.add_argument("--nodes-per-run", type=int, default=d("nodes_per_run"),
                   help="nodes per MPI run (default %(default)s)")
    p.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    p.add_argument("--account", help="Slurm account")
    p.add_argument("--walltime", default=d("walltime"), help="block walltime (default %(default)s)")
    p.add_argument("--scheduler-options", default=d("scheduler_options"),
                   help="extra '#SBATCH ...' lines for every block")
    p.add_argument("--load", action="append", metavar="SPEC",
                   help=f"spack load SPEC, in order, miniconda3 last (default {' '.join(environment.DEFAULT_LOADS)})")
    p.add_argument("--no-spack", action="store_true", help="tools already on PATH: no spack loads")
    p.add_argument("--mpi", default=d("mpi"), help=f"MPI flavour: {' or '.join(MPI_FLAVOURS)} (default %(default)s)")
    p.add_argument("--launcher", help=_launcher_help())
    p.add_argument("--address", default=os.environ.get("LOCAL_CLUSTER_ADDRESS"),
                   help="address workers reach this machine at (default: $LOCAL_CLUSTER_ADDRESS or Parsl's guess)")
    p.add_argument("--run-timeout", type=float, default=d("run_timeout"), help="seconds before an MPI run is ended")
    p.add_argument("--retries", type=int, default=d("retries"),
                   help="retries of a failed MPI run (default %(default)s)")
    p.add_argument("--stall-timeout", type=float, default=d("stall_timeout"),
                   help="seconds with no block able to run (nodes down, blocks failed, Slurm silent) before giving up "
                        "(default %(default)s)")
    p.add_argument("--max-lost-blocks", type=int, default=d("max_lost_blocks"),
                   help="blocks that may be lost to a dead first node, each replaced by a new one and its "
                        "unfinished runs submitted again (not counted as --retries), before the run gives up "
                        "(default %(default)s)")
    p.add_argument("--strategy-period", type=float, default=d("strategy_period"), help="Parsl scaling period, seconds")
    p.add_argument("--source", type=Path, default=SOURCE,
                   help="the MPI program's C source (default: workflows/mpi_hello.c; others must print its lines)")
    p.add_argument("--command", dest="user_command", metavar="'CMD ARGS'",
                   help="run your own MPI program instead of the hello world: each of the --repeats runs starts CMD "
                        "ARGS (shell quoting) with the variant's rank launcher on --nodes-per-run nodes, all their "
                        "CPUs, in this directory; result.json says where each rank ran, each run's exit status and "
                        "output files")
    p.add_argument("--probe", action="store_true",
                   help="with --command: the hello world's placement proof first (compile, runs, verification), "
                        "then the command's runs, which are not started if a probe run fails")
    p.add_argument("--run-dir", type=Path, help="run directory (default runs/<variant>-<timestamp>)")
    p.add_argument("--json", action="store_true", help="print only the path of result.json")
    p.add_argument("--monitoring", action="store_true",
                   help=f"Parsl's MonitoringHub into RUN_DIR/{monitoring.DATABASE} (see: visualize RUN_DIR)")
    p.add_argument("--screenshot", action="store_true",
                   help=f"with --monitoring: keep a headless Chromium screenshot of the run's parsl-visualize page "
                        f"as RUN_DIR/{monitoring.SCREENSHOT}")


def parser(as_run_py: bool = False, prog: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; as_run_py: as `python workflows/run.py` reads it (`run` implied)."""
    p = cli.Parser(prog=prog, description="The MPI hello world through one Parsl executor variant on Slurm "
                "(run), the run directories it leaves (clean), and a monitored run's record (visualize).")
    prog = p.prog
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", prog=prog if as_run_py else None,
                         help="VARIANT [options]: one workflow run",
                         description="The MPI hello world (or your own MPI program: --command) through one Parsl "
                                     "executor variant: settings, the variant's Config, apps on Slurm, verified "
                                     "placement, result.json. Every Slurm job the run submitted is cancelled when it "
                                     "ends, however it ends.",
                         epilog=f"also: {prog} clean [--dry-run] | visualize RUN_DIR [--port N]" if as_run_py else None)
    _add_run_arguments(run)
    _add_variant_options(run)
    clean = sub.add_parser("clean",
                           help="remove run directories and Parsl's stray runinfo, nothing else",
                           description="Remove the run directories under runs/ (those holding the marker a run "
                                       "leaves) and Parsl's stray runinfo/, nothing else.")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed")
    vis = sub.add_parser("visualize", help="RUN_DIR: parsl-visualize on a monitored run's database",
                         description="Serve a monitored run's database with parsl-visualize on 127.0.0.1 until Ctrl-C.")
    vis.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory of a --monitoring run")
    vis.add_argument("--port", type=int, help="port (default: a free one)")
    return p


def clean(dry_run: bool, runs_root: Path = Path("runs")) -> int:
    """Remove run directories (those holding the marker) and Parsl's stray runinfo, nothing else."""
    targets = sorted(p.parent for p in runs_root.glob(f"*/{session.MARKER}")) if runs_root.exists() else []
    targets += [p for p in (Path("runinfo"),) if p.is_dir()]
    for t in targets:
        print(f"{'would remove' if dry_run else 'removing'} {t}")
        if not dry_run:
            shutil.rmtree(t)
    if not targets:
        print("nothing to clean")
    return 0


def visualize(run_dir: Path, port: int | None) -> int:
    """parsl-visualize on that run's database, on 127.0.0.1, until Ctrl-C or SIGTERM."""
    run_dir = run_dir.absolute()
    db = monitoring.database(run_dir)
    try:
        missing = monitoring.missing()
        if missing:
            raise monitoring.MonitoringError(missing)
        workflow_id, tasks = monitoring.read(db)
        session.interrupt_on_sigterm()
        with monitoring.serving(db, port, log=run_dir / "visualize.log") as base:
            print(f"parsl-visualize serving {db}\nworkflow {workflow_id} ({len(tasks)} tasks): "
                  f"{monitoring.workflow_page(base, workflow_id)}\n(Ctrl-C to stop)", flush=True)
            print("\n".join(monitoring.task_lines(tasks)), flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None, as_run_py: bool = False) -> int:
    """The console script (parsl-mpi-workflows) and python -m workflows; as_run_py: python workflows/run.py."""
    return cli.run(lambda prog: _main(prog, sys.argv[1:] if argv is None else list(argv), as_run_py))


def _main(name: str, argv: list[str], as_run_py: bool) -> int:
    if as_run_py and argv[:1] not in (["clean"], ["visualize"]):
        argv = ["run", *argv]
    args = parser(as_run_py, name).parse_args(argv)
    if args.command == "clean":
        return clean(args.dry_run)
    if args.command == "visualize":
        return visualize(args.run_dir, args.port)
    return runner.run(args, name)
