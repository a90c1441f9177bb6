"""scripts/local-cluster.sh up|down|status|env: argument parsing and one-line errors."""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from projectdir import cli

from . import cluster
from .spec import DEFAULT_ROOT, ClusterSpec, defaults


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# The spec's fields the command line sets, with their help; the defaults are ClusterSpec's own.
SPEC_FLAGS = {
    "nodes": "nodes", "cpus": "CPUs per node", "bridge": "host bridge name", "subnet": "node subnet",
    "prefix": "namespace/link prefix", "ctld_port": "SlurmctldPort", "slurmd_port": "SlurmdPort",
}


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    common = cli.Parser(add_help=False)
    common.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="directory holding all cluster state (default: %(default)s)")
    spec_defaults = defaults()
    for field, what in SPEC_FLAGS.items():
        default = spec_defaults[field]
        common.add_argument(f"--{field.replace('_', '-')}", type=_positive_int if isinstance(default, int) else str,
                            default=default, help=f"{what} (default: %(default)s)")
    common.add_argument("--timeout", type=float, default=30, help="seconds to wait for idle nodes")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p = cli.Parser(prog=prog, description="A real multi-node Slurm cluster on this machine, one namespace per node.")
    commands = "up,down,status,env,restart-controller,kill-node,revive-node"
    sub = p.add_subparsers(dest="command", required=True, metavar=f"{{{commands}}}")
    sub.add_parser("up", parents=[common], help="start munged, slurmctld and one slurmd per node")
    sub.add_parser("down", parents=[common], help="cancel jobs, stop everything, remove all state")
    sub.add_parser("status", parents=[common], help="print daemons and node states")
    sub.add_parser("env", parents=[common], help="print export lines for client commands (eval them)")
    sub.add_parser("restart-controller", parents=[common], help="restart slurmctld on its saved state (fault tests)")
    for name, what in (("kill-node", "SIGKILL every process on NODE, as when a node dies (fault tests)"),
                       ("revive-node", "start NODE's slurmd again and wait until it is idle")):
        sub.add_parser(name, parents=[common], help=what).add_argument("node", metavar="NODE")
    return p


def spec_from(args: argparse.Namespace) -> ClusterSpec:
    """The spec recorded at --root when the cluster runs there, else the one the flags describe."""
    root = args.root.resolve()
    recorded = cluster.load(root) if args.command != "up" else None
    return recorded or ClusterSpec(root=root, host=socket.gethostname().split(".")[0],
                                   **{field: getattr(args, field) for field in SPEC_FLAGS})


def upstream_env_lines() -> list[str]:
    """`python -m upstream env`'s lines (Flux and Spack built by the set-up), when that package is here.

    localcluster does not depend on it: without it (or with nothing built) there are no lines.
    """
    try:
        upstream = importlib.import_module("upstream.__main__")
        layout = importlib.import_module("upstream.layout")
    except ImportError:
        return []
    try:
        return list(upstream.env_lines(layout.prefix()))
    except Exception as err:  # noqa: BLE001 - the cluster's own lines still count
        print(f"local-cluster: no Flux/Spack PATH line: {err}", file=sys.stderr)
        return []


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-cluster (scripts/local-cluster.sh): 0 done (status: running), 1 failed
    (status: not running), 2 refused."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    progress = (lambda _: None) if args.quiet else (lambda msg: print(f"... {msg}", file=sys.stderr))
    spec = spec_from(args)
    if args.command == "up":
        print(cluster.up(spec, timeout=args.timeout, progress=progress))
    elif args.command == "down":
        print(cluster.down(spec, progress=progress))
    elif args.command == "status":
        ok, text = cluster.status(spec)
        print(text)
        return cli.OK if ok else cli.FAILED
    elif args.command == "restart-controller":
        print(cluster.restart_controller(spec))
    elif args.command == "kill-node":
        print(cluster.kill_node(spec, args.node))
    elif args.command == "revive-node":
        print(cluster.revive_node(spec, args.node))
    else:
        print("\n".join([cluster.env_lines(spec), *upstream_env_lines()]))
    return cli.OK
