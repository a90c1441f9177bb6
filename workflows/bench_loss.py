"""Benchmark: the time from the loss of a block's first node to the last run verified, per variant, side by side.

One 6-node local cluster of its own (always taken down), and for each variant and round, interleaved: a run of 6
MPI runs of 2 nodes whose ranks hold a few seconds after answering; once a run holds on the running block's first
node (its worker pool's or Flux's rank 0 node), that node is killed. Measured: seconds from the kill to the end stamp
of the last run (result.json's), and the command's wall time. The node is revived before the next run. htex's block
holds one run, so Parsl's retry is its way back (it runs with --retries 1, run.py's default, as the fault tests run
it); the others run with --retries 0: a new block, not a retry, must bring them back.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from projectdir import cli
from workflows import variants
from workflows.errors import WorkflowsError

RUN = Path(__file__).resolve().parent / "run.py"
HELLO = Path(__file__).resolve().parent / "mpi_hello.c"
LABELS = ("htex", "flux", "mpi/flux", "mpi")
REFERENCE = "htex"
NODES, REPEATS = 6, 6
RETRIES = {"htex": 1}  # the others 0: what brings them back is the new block
TAG = "parslmpi-"  # in the --comment of every block job (Settings.tag)


class BenchLossError(WorkflowsError):
    """A run that never reached its fault (ended first, no block, no run holding on the first node)."""


def holding_program(hello: str, seconds: int) -> str:
    """mpi_hello.c's text with every rank holding `seconds` after its line, before MPI_Finalize."""
    text = hello.replace("#include <stdio.h>", "#include <stdio.h>\n#include <unistd.h>", 1)
    return text.replace("  MPI_Finalize();", f"  sleep({seconds});\n  MPI_Finalize();", 1)


def command(label: str, run_dir: Path, source: Path, python: str = sys.executable) -> list[str]:
    """run.py's command line for one measured run of the variant `label` (`mpi/flux`: mpi --launcher flux)."""
    choice = {c.label: c for c in variants.choices()}[label]
    return [python, str(RUN), *choice.args, "--no-spack", "--source", str(source), "--run-dir", str(run_dir),
            "--repeats", str(REPEATS), "--retries", str(RETRIES.get(label, 0)), "--stall-timeout", "30"]


def first_block(squeue: str, other_than: frozenset[str] = frozenset()) -> tuple[str, str] | None:
    """(job, first node) of the first running block in `squeue -h -t R -o '%i %B %k'`'s output, or None."""
    for line in squeue.splitlines():
        words = line.split()
        if len(words) >= 3 and TAG in line and words[0] not in other_than:
            return words[0], words[1]
    return None


def holds_on(output: str, host: str) -> bool:
    """Whether a run's output shows a rank answering on host with the run not over since (no `# end` line)."""
    marker = f"Hello world from processor {host},"
    if not re.search(rf"^{re.escape(marker)}", output, re.MULTILINE):
        return False
    return not re.search(r"^# end ", output.split(marker)[-1], re.MULTILINE)


def sample_of(data: dict, killed_at: float, wall: float, returncode: int) -> dict:
    """One measured run from its result.json: kill -> last run's end, wall, verified, blocks lost."""
    ends = [r["end"] for r in data.get("runs", []) if r.get("end") is not None]
    return {"kill_to_verified": max(ends) - killed_at if ends else None, "wall": wall,
            "verified": bool(data.get("verified")) and returncode == 0 and len(ends) == REPEATS,
            "lost_blocks": len(data.get("lost_blocks", [])), "problems": list(data.get("problems", []))[:3]}


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarize(samples: dict[str, list[dict]]) -> list[dict]:
    """A row per variant: medians over the rounds, each kill->verified over htex's (the reference's)."""
    rows: list[dict] = [{"variant": label, "kill_to_verified": _median([s["kill_to_verified"] for s in got]),
                         "wall": _median([s["wall"] for s in got]),
                         "verified": bool(got) and all(s["verified"] for s in got),
                         "lost_blocks": _median([s["lost_blocks"] for s in got]), "rounds": len(got)}
                        for label, got in samples.items()]
    ref = next((r["kill_to_verified"] for r in rows if r["variant"] == REFERENCE), None)
    for r in rows:
        r["ratio"] = r["kill_to_verified"] / ref if ref and r["kill_to_verified"] is not None else None
    return rows


def _cell(value: float | None, width: int, places: int) -> str:
    return f"{value:>{width}.{places}f}" if value is not None else f"{'-':>{width}}"


def table(rows: Sequence[dict]) -> str:
    """The report: variant, kill -> last verified, wall, ratio to htex, verified, lost blocks."""
    lines = [f"{'variant':<10}{'kill->last verified s':>23}{'wall s':>9}{'x htex':>8}{'verified':>10}"
             f"{'lost blocks':>13}"]
    for r in rows:
        lines.append(f"{r['variant']:<10}{_cell(r['kill_to_verified'], 23, 1)}{_cell(r['wall'], 9, 1)}"
                     f"{_cell(r['ratio'], 8, 2)}{'yes' if r['verified'] else 'NO':>10}"
                     f"{_cell(r['lost_blocks'], 13, 0)}")
    return "\n".join(lines)


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="+", default=list(LABELS), choices=LABELS, metavar="VARIANT",
                   help=f"what to run ({' '.join(LABELS)}; default all; {REFERENCE} is the ratio's reference)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians are reported (default 1)")
    p.add_argument("--hold", type=int, default=8, help="seconds each rank holds after answering (default 8)")
    p.add_argument("--out", type=Path, default=Path("runs") / f"bench-loss-{time.strftime('%Y%m%d-%H%M%S')}",
                   help="where the runs, bench-loss.json and the table go (a path the nodes see)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-bench-loss (scripts/bench-loss.sh)."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    from localcluster import cluster, slots
    from localcluster.spec import PROJECT

    if args.rounds < 1 or args.hold < 1:
        raise BenchLossError(f"--rounds and --hold must be at least 1, got {args.rounds} and {args.hold}")
    skipped = [f"{c.label}: skipped ({why})" for c in variants.choices()
               if c.label in args.variants and (why := variants.unavailable(c))]
    if skipped:
        raise BenchLossError("; ".join(skipped))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    source = out / "hold.c"
    source.write_text(holding_program(HELLO.read_text(), args.hold))
    claim = slots.allocate(reclaim=cluster.down)
    host = socket.gethostname().split(".")[0]
    spec = claim.spec(PROJECT / ".state" / f"bench-loss-{claim.slot.number}", host, nodes=NODES, cpus=2)
    try:
        print(f"cluster: {cluster.up(spec)}", file=sys.stderr, flush=True)
        samples = _rounds(args, spec, source, out)
    finally:
        cluster.down(spec)
        claim.release()
    rows = summarize(samples)
    (out / "bench-loss.json").write_text(json.dumps({"rows": rows, "samples": samples}, indent=2))
    print(table(rows))
    print(f"bench-loss.json in {out}")
    return 0 if all(r["verified"] for r in rows) else 1


def _rounds(args: argparse.Namespace, spec, source: Path, out: Path) -> dict[str, list[dict]]:
    """Every variant once a round, the victim revived after each run, so the cluster is whole for the next."""
    from localcluster import cluster
    from localcluster.spec import client_env

    env = {**os.environ, **client_env(spec)}
    samples: dict[str, list[dict]] = {label: [] for label in args.variants}
    for rnd in range(args.rounds):
        for label in args.variants:
            print(f"round {rnd + 1}/{args.rounds}  {label}", file=sys.stderr, flush=True)
            run_dir = out / f"{label.replace('/', '-')}-r{rnd}"
            got, victim = _measure(command(label, run_dir, source), run_dir, env, spec)
            samples[label].append(got)
            print(f"  killed {victim}: kill->last verified {_cell(got['kill_to_verified'], 0, 1)} s, "
                  f"verified {got['verified']}", file=sys.stderr, flush=True)
            cluster.revive_node(spec, victim)
    return samples


def _measure(cmd: list[str], run_dir: Path, env: dict[str, str], spec) -> tuple[dict, str]:
    from localcluster import cluster

    log = run_dir.with_suffix(".log")  # the command's output, in a file: unread pipes would block it
    with log.open("w") as sink:
        started = time.time()
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
        try:
            victim = _wait_for_fault(proc, run_dir, env)
            killed_at = time.time()
            cluster.kill_node(spec, victim)
            proc.wait(timeout=600)
            wall = time.time() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result = run_dir / "result.json"
    if not result.exists():
        raise BenchLossError(f"no result.json in {run_dir}: see {log}")
    return sample_of(json.loads(result.read_text()), killed_at, wall, proc.returncode), victim


def _wait_for_fault(proc: subprocess.Popen, run_dir: Path, env: dict[str, str], timeout: float = 180) -> str:
    """The first node of the running block, once a run that is not over holds there."""
    deadline = time.monotonic() + timeout
    host = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchLossError(f"the run ended before the fault (exit {proc.returncode}): see {run_dir}")
        if host is None:
            squeue = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i %B %k"], env=env, capture_output=True,
                                    text=True).stdout
            host = (first_block(squeue) or (None, None))[1]
        outputs = sorted((run_dir / "outputs").glob("run-*.out")) if (run_dir / "outputs").is_dir() else []
        if host is not None and any(holds_on(o.read_text(errors="replace"), host) for o in outputs):
            return host
        time.sleep(0.2)
    raise BenchLossError(f"no run held on a running block's first node within {timeout:.0f} s: see {run_dir}")


if __name__ == "__main__":
    sys.exit(main())
