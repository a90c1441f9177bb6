"""scripts/local-cluster.sh up|down|status|env: argument parsing and one-line errors."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from . import cluster
from .spec import ClusterSpec, SpecError

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / ".state" / "cluster"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, nothing changed
        self.exit(2, f"local-cluster: {message}\n")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="directory holding all cluster state (default: %(default)s)")
    common.add_argument("--nodes", type=_positive_int, default=4, help="nodes (default: 4)")
    common.add_argument("--cpus", type=_positive_int, default=2, help="CPUs per node (default: 2)")
    common.add_argument("--bridge", default="slbr0", help="host bridge name (default: slbr0)")
    common.add_argument("--subnet", default="10.250.0.0/24", help="node subnet (default: 10.250.0.0/24)")
    common.add_argument("--prefix", default="slnode-", help="namespace/link prefix (default: slnode-)")
    common.add_argument("--ctld-port", type=_positive_int, default=16817, help="SlurmctldPort")
    common.add_argument("--slurmd-port", type=_positive_int, default=16818, help="SlurmdPort")
    common.add_argument("--timeout", type=float, default=30, help="seconds to wait for idle nodes")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p = _Parser(prog="local-cluster.sh",
                description="A real multi-node Slurm cluster on this machine, one namespace per node.")
    commands = "up,down,status,env,restart-controller,kill-node,revive-node"
    sub = p.add_subparsers(dest="command", required=True, metavar=f"{{{commands}}}", parser_class=_Parser)
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
    return recorded or ClusterSpec(
        root=root, host=socket.gethostname().split(".")[0], nodes=args.nodes, cpus=args.cpus,
        bridge=args.bridge, subnet=args.subnet, prefix=args.prefix,
        ctld_port=args.ctld_port, slurmd_port=args.slurmd_port)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    progress = (lambda _: None) if args.quiet else (lambda msg: print(f"... {msg}", file=sys.stderr))
    try:
        spec = spec_from(args)
        if args.command == "up":
            print(cluster.up(spec, timeout=args.timeout, progress=progress))
        elif args.command == "down":
            print(cluster.down(spec, progress=progress))
        elif args.command == "status":
            ok, text = cluster.status(spec)
            print(text)
            return 0 if ok else 3
        elif args.command == "restart-controller":
            print(cluster.restart_controller(spec))
        elif args.command == "kill-node":
            print(cluster.kill_node(spec, args.node))
        elif args.command == "revive-node":
            print(cluster.revive_node(spec, args.node))
        else:
            print(cluster.env_lines(spec))
    except (SpecError, cluster.ClusterError) as err:
        first, *rest = str(err).splitlines()
        if rest:
            print("\n".join(rest), file=sys.stderr)
        print(f"local-cluster: {first}", file=sys.stderr)
        return 1
    return 0
