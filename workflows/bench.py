"""Benchmark: every variant against the raw-Slurm baseline, for several K, side by side in one run.

Rounds are interleaved (round 1 does every K and variant, then round 2 ...) and medians reported,
so the machine's noise hits every line alike. With --monitoring, each variant Parsl's monitoring supports
is also run with run.py --monitoring (row VARIANT+mon) right after its plain run in every round, and the
extra time per MPI run it costs is its own column. Makespan and time to first result are measured from
the moment the command starts to the end stamp of the last (first) MPI run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from projectdir import cli
from workflows import variants, verify
from workflows.demo import runnable
from workflows.launchers import DEFAULT_RANK_LAUNCHER
from workflows.placement import parse
from workflows.settings import Settings

RUN = Path(__file__).resolve().parent / "run.py"
SOURCE = Path(__file__).resolve().parent / "mpi_hello.c"
MONITORED = "+mon"  # the row of a variant run with --monitoring


def measure(cmd: list[str], out_dir: Path, repeats: int, nodes_per_run: int, cpus: dict[str, int]) -> dict:
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    ended = time.time()
    outputs = out_dir / "outputs" if (out_dir / "outputs").is_dir() else out_dir
    runs = [parse(i, "", (outputs / f"run-{i}.out").read_text() if (outputs / f"run-{i}.out").exists()
                  else "") for i in range(repeats)]
    ends = [r.end for r in runs if r.end is not None]
    problems = verify.verify(runs, repeats=repeats, nodes_per_run=nodes_per_run, cpus_by_node=cpus)
    return {"makespan": (max(ends) - started) if ends else None, "first": (min(ends) - started) if ends else None,
            "command_seconds": ended - started, "verified": proc.returncode == 0 and not problems,
            "problems": problems[:3]}


def _num(value: float | None, width: int, places: int) -> str:
    return f"{value:>{width}.{places}f}" if value is not None else f"{'-':>{width}}"


def table(rows: list[dict]) -> str:
    monitored = any("monitoring_ms" in r for r in rows)
    width = max(9, *(len(r["variant"]) + 1 for r in rows))
    head = (f"{'variant':<{width}}{'K':>4}{'makespan s':>12}{'first s':>9}{'overhead/run ms':>17}{'x baseline':>11}"
            + (f"{'monitoring/run ms':>19}" if monitored else "") + "  ok")
    lines = [head]
    for r in rows:
        mon = _num(r.get("monitoring_ms"), 19, 0) if monitored else ""
        lines.append(f"{r['variant']:<{width}}{r['K']:>4}{_num(r['makespan'], 12, 2)}{_num(r['first'], 9, 2)}"
                     f"{_num(r['overhead_ms'], 17, 0)}{_num(r['ratio'], 11, 2)}{mon}  "
                     f"{'yes' if r['verified'] else 'NO'}")
    return "\n".join(lines)


def monitored_labels(labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """Each label followed by its +mon twin where Parsl's monitoring supports the variant; a line for each other."""
    choices = {c.label: c for c in variants.choices()}
    names, skipped = [], []
    for label in labels:
        c = choices.get(label)
        variant, launcher = (c.variant, c.rank_launcher) if c else (OPTION_ROWS[label][0], None)
        s = Settings(variant=variant, run_dir=Path("runs"), rank_launcher=launcher or DEFAULT_RANK_LAUNCHER,
                     variant_options=variants.options_in(OPTION_ROWS.get(label, [])))
        why = variants.get(variant).monitoring_unsupported(s)
        names.append(label)
        if why:
            skipped.append(f"{label}: no {label}{MONITORED} row ({why})")
        else:
            names.append(label + MONITORED)
    return names, skipped


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant in dict.fromkeys(r["variant"] for r in rows):
        pts = [(r["K"], r["makespan"]) for r in rows if r["variant"] == variant and r["makespan"] is not None]
        ax.plot([k for k, _ in pts], [m for _, m in pts], marker="o", label=variant)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K (MPI runs of 2 nodes x 2 ranks)")
    ax.set_ylabel("makespan, s (median)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# Rows that are a variant run with an option, beside the variants' own choices.
OPTION_ROWS = {"flux/parsl-wrapper": ["flux", "--flux-wrapper", "parsl"]}


def known_rows() -> dict[str, list[str]]:
    """Every row the benchmark can run: its label and run.py's arguments for it."""
    return {**{c.label: c.args for c in variants.choices()}, **OPTION_ROWS}


def with_option_rows(labels: Sequence[str]) -> list[str]:
    """The labels, each option row right after the variant it is an option of (when that variant is there)."""
    todo = list(labels)
    for label, args in OPTION_ROWS.items():
        if args[0] in todo:
            todo.insert(todo.index(args[0]) + 1, label)
    return todo


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, nargs="+", default=[4, 16, 64], help="numbers of MPI runs (default 4 16 64)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    known = known_rows()
    p.add_argument("--variants", nargs="+", default=None, choices=sorted(known), metavar="VARIANT",
                   help=f"rows: variants, VARIANT/LAUNCHER, and options ({' '.join(known)}; "
                        "default: all runnable here)")
    p.add_argument("--out", type=Path, default=Path("runs") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}")
    p.add_argument("--monitoring", action="store_true",
                   help=f"also run each variant with Parsl's monitoring (rows VARIANT{MONITORED}, same rounds)")
    return p


def command(name: str, k: int, d: Path, binary: Path, nodes: int) -> list[str]:
    """The command of one row's measurement: the raw-Slurm baseline, or run.py with the row's arguments."""
    if name == "baseline":
        return ["salloc", f"-N{nodes}", "--exclusive", "-Q", sys.executable, "-m",
                "workflows.baseline", "--repeats", str(k), "--binary", str(binary), "--out", str(d)]
    label = name.removesuffix(MONITORED)
    return [sys.executable, str(RUN), *known_rows()[label], "--no-spack", "--repeats", str(k),
            "--run-dir", str(d), "--json", *(["--monitoring"] if name != label else [])]


def sample(names: Sequence[str], ks: Sequence[int], rounds: int, out: Path, binary: Path,
           cpus: dict[str, int]) -> dict[tuple[str, int], list[dict]]:
    """Interleaved rounds: every K and row once per round, so the machine's noise hits every row alike."""
    samples: dict[tuple[str, int], list[dict]] = {(n, k): [] for n in names for k in ks}
    for rnd in range(rounds):
        for k in ks:
            for name in names:
                d = out / f"{name.replace('/', '-')}-K{k}-r{rnd}"
                print(f"round {rnd + 1}/{rounds}  K={k:<3} {name}", file=sys.stderr, flush=True)
                samples[(name, k)].append(measure(command(name, k, d, binary, len(cpus)), d, k, 2, cpus))
    return samples


def summarize(names: Sequence[str], ks: Sequence[int], samples: dict[tuple[str, int], list[dict]]) -> list[dict]:
    """Medians per row and K, overhead per MPI run over the baseline of the same K."""
    rows = []
    for k in ks:
        base = statistics.median(s["makespan"] for s in samples[("baseline", k)] if s["makespan"] is not None)
        for name in names:
            got = [s for s in samples[(name, k)] if s["makespan"] is not None]
            mk = statistics.median(s["makespan"] for s in got) if got else None
            first = statistics.median(s["first"] for s in got) if got else None
            rows.append({"variant": name, "K": k, "makespan": mk, "first": first,
                         "overhead_ms": (mk - base) / k * 1000 if mk is not None else None,
                         "ratio": mk / base if mk is not None else None,
                         "verified": all(s["verified"] for s in samples[(name, k)])})
            plain = rows[-2] if name.endswith(MONITORED) else None  # the same variant unmonitored, just before
            if plain is not None and mk is not None and plain["makespan"] is not None:
                rows[-1]["monitoring_ms"] = (mk - plain["makespan"]) / k * 1000
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-bench (scripts/bench.sh brings a cluster up around it)."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    from workflows import slurm

    cpus = slurm.partition_nodes(None)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    binary = out / "mpi_hello"
    subprocess.run(["mpicc", "-O2", "-o", str(binary), str(SOURCE)], check=True)
    labels = args.variants or with_option_rows([c.label for c in runnable()[0]])
    names, skipped = monitored_labels(labels) if args.monitoring else (list(labels), [])
    for line in skipped:
        print(line, file=sys.stderr)
    names = ["baseline", *names]
    samples = sample(names, args.k, args.rounds, out, binary, cpus)
    rows = summarize(names, args.k, samples)
    (out / "bench.json").write_text(json.dumps({"rows": rows, "samples": {f"{n}-K{k}": v for (n, k), v in
                                                                         samples.items()}}, indent=2))
    plot(rows, out / "bench.png")
    print(table(rows))
    print(f"bench.json and bench.png in {out}")
    for d in out.glob("*-K*-r*"):
        shutil.rmtree(d / "runinfo", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
