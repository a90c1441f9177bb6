"""Run every variant this machine can run, then print one summary table (the README's main command)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from projectdir import cli
from workflows import cli as workflows_cli
from workflows import variants

RUN = Path(__file__).resolve().parent / "run.py"


def runnable() -> tuple[list[variants.Choice], list[str]]:
    """Every variant and launcher that can run here, and a line for each of the others saying why not."""
    ok, skipped = [], []
    for choice in variants.choices():
        why = variants.unavailable(choice)
        if why:
            skipped.append(f"{choice.label}: skipped ({why})")
        else:
            ok.append(choice)
    return ok, skipped


def table(rows: Sequence[dict]) -> str:
    lines = [f"{'variant':<12}{'runs':>5}{'verified':>10}{'wall s':>8}{'parallel':>9}  run directory"]
    for r in rows:
        lines.append(f"{r['label']:<12}{len(r['runs']):>5}{'yes' if r['verified'] else 'NO':>10}"
                     f"{r['wall_seconds']:>8.1f}{r.get('max_concurrent_runs', 0):>9}  {r['run_dir']}")
    return "\n".join(lines)


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__)
    p.add_argument("--runs-root", type=Path, default=Path("runs"), help="where run directories go")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-demo (scripts/demo.sh)."""
    return cli.run(lambda prog: _main(prog, argv))


def _main(prog: str, argv: Sequence[str] | None) -> int:
    args, extra = parser(prog).parse_known_args(argv)  # the rest goes to every run.py (e.g. --no-spack)
    workflows_cli.parser(as_run_py=True, prog=prog).parse_args(["run", "htex", *extra])  # refused before any run
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows, failed = [], []
    todo, skipped = runnable()
    for choice in todo:
        label, run_args = choice.label, choice.args
        run_dir = (args.runs_root / f"{label.replace('/', '-')}-{stamp}").resolve()
        print(f"... {label}", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(RUN), *run_args, "--run-dir", str(run_dir), "--json", *extra],
                              capture_output=True, text=True)
        result = run_dir / "result.json"
        if not result.exists():
            failed.append(label)
            print(f"{label}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no result'}",
                  file=sys.stderr)
            continue
        data = json.loads(result.read_text())
        rows.append({**data, "label": label, "run_dir": str(run_dir)})
        failed += [] if data["verified"] else [label]
    print(table(rows))
    for line in skipped:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
