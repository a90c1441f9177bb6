"""Run every variant this machine can run, then print one summary table (the README's main command)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from workflows.settings import VARIANTS

RUN = Path(__file__).resolve().parent / "run.py"


def runnable() -> list[str]:
    return [v for v in VARIANTS if v != "flux" or shutil.which("flux")]


def table(rows: Sequence[dict]) -> str:
    lines = [f"{'variant':<8}{'runs':>5}{'verified':>10}{'wall s':>8}{'parallel':>9}  run directory"]
    for r in rows:
        lines.append(f"{r['variant']:<8}{len(r['runs']):>5}{'yes' if r['verified'] else 'NO':>10}"
                     f"{r['wall_seconds']:>8.1f}{r.get('max_concurrent_runs', 0):>9}  {r['run_dir']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workflows.demo", description=__doc__)
    p.add_argument("--runs-root", type=Path, default=Path("runs"), help="where run directories go")
    args, extra = p.parse_known_args(argv)  # the rest goes to every run.py (e.g. --no-spack)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows, failed = [], []
    skipped = [v for v in VARIANTS if v not in runnable()]
    for variant in runnable():
        run_dir = (args.runs_root / f"{variant}-{stamp}").resolve()
        print(f"... {variant}", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(RUN), variant, "--run-dir", str(run_dir), "--json", *extra],
                              capture_output=True, text=True)
        result = run_dir / "result.json"
        if not result.exists():
            failed.append(variant)
            print(f"{variant}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no result'}",
                  file=sys.stderr)
            continue
        data = json.loads(result.read_text())
        rows.append({**data, "run_dir": str(run_dir)})
        failed += [] if data["verified"] else [variant]
    print(table(rows))
    for v in skipped:
        print(f"{v}: skipped (flux is not installed; it comes with the Spack environment)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
