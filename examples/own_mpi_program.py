"""Your own MPI program through a variant, from Python (docs/own-program.md): the variant's Parsl Config
loaded, the program run twice through the MPI bash app, then where each run ran.

    python examples/own_mpi_program.py VARIANT [--no-spack] [--nodes-per-run K] [--run-dir DIR] -- PROGRAM [ARGS...]

Exit status 0 when both runs exited 0. Every Slurm job it submitted is cancelled when it ends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's workflows, installed or not

import workflows  # noqa: E402

RUNS = 2


def exit_status(future: Any) -> int | None:
    """0, the program's exit status (Parsl's BashExitFailure carries it), or None when it never ran to an end."""
    err = future.exception()
    return 0 if err is None else getattr(err, "exitcode", None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python examples/own_mpi_program.py", description=__doc__.split("\n")[0])
    p.add_argument("variant", help="executor variant, as run.py's: htex, static, mpi, flux")
    p.add_argument("--no-spack", action="store_true", help="tools already on PATH: no spack loads")
    p.add_argument("--nodes-per-run", type=int, default=2, help="nodes per MPI run (default %(default)s)")
    p.add_argument("--run-dir", type=Path, help="where the Config's logs and the runs' outputs go")
    p.add_argument("program", nargs="+", help="the MPI program and its arguments (after --)")
    args = p.parse_args(argv)
    fields: dict[str, Any] = {"nodes_per_run": args.nodes_per_run}
    if args.no_spack:
        fields["use_spack"] = False
    if args.run_dir:
        fields["run_dir"] = args.run_dir
    try:
        s = workflows.settings_for(args.variant, **fields)
    except (ValueError, RuntimeError) as err:  # bad settings, Slurm unreachable: one line
        print(f"own_mpi_program: {err}", file=sys.stderr)
        return 2
    outputs = s.run_dir / "example"
    outputs.mkdir(parents=True, exist_ok=True)
    files = [(outputs / f"run-{i}.out", outputs / f"run-{i}.err") for i in range(RUNS)]
    with workflows.loaded(s):  # parsl.load(workflows.config(s)), and every Slurm job cancelled after
        futures = [workflows.submit(s, args.program, stdout=out, stderr=err) for out, err in files]
        statuses = [exit_status(f) for f in futures]
    for i, ((stdout, stderr), status) in enumerate(zip(files, statuses, strict=True)):
        run = workflows.where_ran(stdout, stderr, status)
        ranks = " ".join(f"{p.rank}@{p.host}:{','.join(map(str, p.cpus))}" for p in run.places)
        print(f"run {i}: exit {status}, nodes {','.join(run.nodes)}, ranks (rank@node:cpus) {ranks}, output {stdout}")
    return 0 if all(status == 0 for status in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
