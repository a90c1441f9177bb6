"""Up and down times of the local cluster for several sizes, measured side by side in one run."""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from projectdir import cli

from . import cluster
from .spec import PROJECT, ClusterSpec

GOAL_16_UP = 2.0


def measure(spec: ClusterSpec) -> tuple[float, float]:
    t0 = time.monotonic()
    cluster.up(spec)
    t1 = time.monotonic()
    cluster.down(spec)
    return t1 - t0, time.monotonic() - t1


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description="Time local-cluster up and down for several node counts.")
    p.add_argument("--nodes", type=int, nargs="+", default=[4, 16], help="node counts (default: 4 16)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, interleaved; the median is reported")
    p.add_argument("--root", type=Path, default=PROJECT / ".state" / "bench")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-bench-cluster (scripts/bench-cluster.sh)."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    host = socket.gethostname().split(".")[0]
    specs = {n: ClusterSpec(root=args.root.resolve() / f"n{n}", host=host, nodes=n, bridge="slbench0",
                            subnet="10.249.0.0/24", prefix="slb-", ctld_port=16870, slurmd_port=16871)
             for n in args.nodes}
    times: dict[int, list[tuple[float, float]]] = {n: [] for n in args.nodes}
    for r in range(args.rounds):
        for n, spec in specs.items():
            print(f"round {r + 1}/{args.rounds}: {n} nodes", file=sys.stderr)
            times[n].append(measure(spec))
    print(f"{'nodes':>5}  {'up s (median)':>13}  {'down s (median)':>15}  {'up / 4-node up':>14}")
    base = statistics.median(u for u, _ in times[args.nodes[0]])
    for n in args.nodes:
        up = statistics.median(u for u, _ in times[n])
        down = statistics.median(d for _, d in times[n])
        print(f"{n:>5}  {up:>13.3f}  {down:>15.3f}  {up / base:>14.2f}")
    if 16 in times:
        up16 = statistics.median(u for u, _ in times[16])
        print(f"goal: 16 nodes up in under {GOAL_16_UP:.0f} s: {'met' if up16 < GOAL_16_UP else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
