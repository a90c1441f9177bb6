"""python workflows/run.py VARIANT [options]: the MPI hello world through one Parsl executor variant.

CLI args -> Settings -> variant.config(settings) -> apps on Slurm -> raw outputs -> verify -> report.
Every Slurm job the run submitted is cancelled when it ends, however it ends.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflows import environment, placement, report, slurm  # noqa: E402
from workflows.settings import VARIANTS, Settings, SettingsError  # noqa: E402

SOURCE = Path(__file__).resolve().parent / "mpi_hello.c"
MARKER = ".workflows-run"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(2, f"run.py: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python workflows/run.py", description=__doc__.split("\n")[0])
    p.add_argument("variant", choices=(*VARIANTS, "clean"), help="executor variant, or clean")
    p.add_argument("--repeats", type=int, default=4, help="MPI runs (default 4)")
    p.add_argument("--nodes-per-run", type=int, default=2, help="nodes per MPI run (default 2)")
    p.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    p.add_argument("--account", help="Slurm account")
    p.add_argument("--walltime", default="00:20:00", help="block walltime (default 00:20:00)")
    p.add_argument("--scheduler-options", default="", help="extra '#SBATCH ...' lines for every block")
    p.add_argument("--load", action="append", metavar="SPEC",
                   help=f"spack load SPEC, in order, miniconda3 last (default {' '.join(environment.DEFAULT_LOADS)})")
    p.add_argument("--no-spack", action="store_true", help="tools already on PATH: no spack loads")
    p.add_argument("--mpi", default="openmpi", help="MPI flavour: openmpi or mpich (default openmpi)")
    p.add_argument("--address", default=os.environ.get("LOCAL_CLUSTER_ADDRESS"),
                   help="address workers reach this machine at (default: $LOCAL_CLUSTER_ADDRESS or Parsl's guess)")
    p.add_argument("--run-timeout", type=float, default=300, help="seconds before an MPI run is ended")
    p.add_argument("--retries", type=int, default=1, help="retries of a failed MPI run (default 1)")
    p.add_argument("--stall-timeout", type=float, default=60,
                   help="seconds with no block able to run (nodes down, blocks failed) before giving up (default 60)")
    p.add_argument("--strategy-period", type=float, default=0.5, help="Parsl scaling period, seconds")
    p.add_argument("--source", type=Path, default=SOURCE,
                   help="the MPI program's C source (default: workflows/mpi_hello.c; others must print its lines)")
    p.add_argument("--run-dir", type=Path, help="run directory (default runs/<variant>-<timestamp>)")
    p.add_argument("--json", action="store_true", help="print only the path of result.json")
    p.add_argument("--dry-run", action="store_true", help="with clean: list what would be removed")
    return p


def settings_from(args: argparse.Namespace, nodes: dict[str, int]) -> Settings:
    use_spack = not args.no_spack and (bool(args.load) or shutil.which("spack") is not None)
    loads = tuple(args.load or environment.DEFAULT_LOADS) if use_spack else ()
    environment.check_order(loads)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = (args.run_dir or Path("runs") / f"{args.variant}-{stamp}").resolve()
    return Settings(
        variant=args.variant, run_dir=run_dir, repeats=args.repeats, nodes_per_run=args.nodes_per_run,
        cpus_per_node=min(nodes.values()), cluster_nodes=len(nodes), partition=args.partition,
        account=args.account, walltime=args.walltime, scheduler_options=args.scheduler_options,
        loads=loads, use_spack=use_spack, venv=environment.current_venv(), address=args.address,
        mpi=args.mpi, run_timeout=args.run_timeout, retries=args.retries, stall_timeout=args.stall_timeout,
        strategy_period=args.strategy_period, tag=f"parslmpi-{uuid.uuid4().hex[:12]}")


def _spec(resources: dict | None) -> dict:
    return {} if resources is None else {"parsl_resource_specification": resources}


def _failure(what: str, err: BaseException, timeout: float) -> str:
    """One line for a failed app: `what` is 'run 3' or 'compiling the MPI program'."""
    from workflows.apps import TIMED_OUT

    if isinstance(err, Stalled):
        return f"{what} {err}"
    if f"exit code {TIMED_OUT}" in str(err):
        return f"{what} timed out after {timeout:g} s (--run-timeout)"
    return f"{what} failed: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"


def wait(futures: dict[int, Future], sampler: slurm.BlockSampler, stall_timeout: float) -> dict[int, BaseException]:
    """Wait for every run; a run that cannot finish because no block can run any more is given up.

    Returns the failures by run index. Parsl waits forever for a block that never starts (its
    nodes died) or for a block it wrongly thinks is pending; the sampler sees both in squeue.
    """
    failures: dict[int, BaseException] = {}
    pending = dict(futures)
    while pending:
        concurrent.futures.wait(pending.values(), timeout=1.0, return_when=concurrent.futures.FIRST_COMPLETED)
        for i, fut in list(pending.items()):
            if fut.done():
                del pending[i]
                if fut.exception() is not None:
                    failures[i] = fut.exception()
        reason = sampler.stalled(stall_timeout) if pending else None
        if reason:
            for i in pending:
                failures[i] = Stalled(f"not finished: {reason} (--stall-timeout {stall_timeout:g})")
            break
    return failures


class Stalled(RuntimeError):
    """The run could not finish: no block of the workflow could run."""


def execute(s: Settings, source: Path = SOURCE) -> tuple[list[placement.Run], dict[int, str], dict]:
    """Run the workflow; returns the parsed runs, why runs failed (by index; -1 the compile), and extra facts."""
    import parsl

    from workflows import apps, launch, variants

    variant = variants.load(s.variant)
    out = s.run_dir / "outputs"
    shutil.rmtree(out, ignore_errors=True)  # bash apps append: a reused run directory starts clean
    out.mkdir(parents=True)
    binary = str(s.run_dir / "mpi_hello")
    errors: dict[int, str] = {}
    config = variant.config(s)
    sampler = slurm.BlockSampler(s.tag, s.partition, config.executors[0].provider.nodes_per_block)
    dfk = parsl.load(config)
    try:
        with sampler:
            line = apps.compile_line(launch.compiler(s.mpi), str(source), binary)
            compiled = apps.compile_mpi(line, stdout=str(out / "compile.out"), stderr=str(out / "compile.err"),
                                        **_spec(variant.compile_resources(s)))
            failed = wait({-1: compiled}, sampler, s.stall_timeout)
            if failed:
                errors[-1] = _failure("compiling the MPI program", failed[-1], s.run_timeout) + (
                    f" (see {out / 'compile.err'})" if (out / "compile.err").exists() else "")
            command = apps.run_line(variant.run_command(s, binary), s.run_timeout)
            futures = {} if errors else {
                i: apps.mpi_run(command, stdout=str(out / f"run-{i}.out"), stderr=str(out / f"run-{i}.err"),
                                walltime=s.run_timeout + 30, **_spec(variant.run_resources(s)))
                for i in range(s.repeats)}
            # a failed run is reported, the others still verified
            for i, err in sorted(wait(futures, sampler, s.stall_timeout).items()):
                errors[i] = _failure(f"run {i}", err, s.run_timeout)
    finally:
        dfk.cleanup()
        parsl.clear()
        cancelled = slurm.cancel_tagged(s.tag)
    runs = []
    for i in range(s.repeats):
        path = out / f"run-{i}.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        runs.append(placement.parse(i, str(path.relative_to(s.run_dir)), text))
    extra = {"block_samples": sampler.samples, "cancelled_jobs": cancelled, "failed_runs": sorted(errors),
             "max_concurrent_runs": placement.max_concurrency(runs)}
    return runs, errors, extra


def clean(dry_run: bool, runs_root: Path = Path("runs")) -> int:
    """Remove run directories (those holding the marker) and Parsl's stray runinfo, nothing else."""
    targets = sorted(p.parent for p in runs_root.glob(f"*/{MARKER}")) if runs_root.exists() else []
    targets += [p for p in (Path("runinfo"),) if p.is_dir()]
    for t in targets:
        print(f"{'would remove' if dry_run else 'removing'} {t}")
        if not dry_run:
            shutil.rmtree(t)
    if not targets:
        print("nothing to clean")
    return 0


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.variant == "clean":
        return clean(args.dry_run)
    try:
        if args.variant == "flux" and shutil.which("flux") is None:
            from workflows.variants.flux import HOW_TO_GET
            raise SettingsError(HOW_TO_GET)
        nodes = slurm.partition_nodes(args.partition)
        s = settings_from(args, nodes)
    except (SettingsError, slurm.SlurmError, environment.LoadOrderError) as err:
        print(f"run.py: {err}", file=sys.stderr)
        return 2
    s.run_dir.mkdir(parents=True, exist_ok=True)
    (s.run_dir / MARKER).touch()
    # Parsl starts interchange.py from PATH: this interpreter's scripts must be found even unactivated.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    logging.getLogger("parsl").propagate = False  # Parsl's log goes to the run directory only
    started = time.time()
    signal.signal(signal.SIGTERM, _interrupted)  # a killed run cancels its jobs too
    try:
        runs, errors, extra = execute(s, args.source.resolve())
    except KeyboardInterrupt:
        print(f"run.py: interrupted; every Slurm job of this run was cancelled ({s.run_dir})", file=sys.stderr)
        return 130
    # Failed runs are reported as such; the placement of every run that completed must still hold.
    completed = [] if -1 in errors else [r for r in runs if r.index not in errors]
    problems = [errors[i] for i in sorted(errors)] + placement.verify(
        completed, repeats=None if errors else s.repeats, nodes_per_run=s.nodes_per_run, cpus_by_node=nodes)
    if s.variant == "static":
        problems += placement.block_count_problems(extra["block_samples"], s.repeats)
    data = report.result(s, runs, problems, time.time() - started, {**extra, "partition_nodes": sorted(nodes)})
    path = report.write(s.run_dir, data)
    report.plot(data, s.run_dir / "placement.png")
    print(path if args.json else report.summary(data) + f"\nrun directory: {s.run_dir}")
    return 0 if data["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
