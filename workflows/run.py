"""python workflows/run.py VARIANT [options]: the MPI hello world through one Parsl executor variant.

CLI args -> Settings -> variant.config(settings) -> apps on Slurm -> raw outputs -> verify -> report.
Every Slurm job the run submitted is cancelled when it ends, however it ends.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any, NoReturn

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflows import environment, monitoring, placement, report, slurm, stall, variants  # noqa: E402
from workflows.launchers import MPI_FLAVOURS, RANK_LAUNCHERS, compiler  # noqa: E402
from workflows.settings import Settings, SettingsError  # noqa: E402

SOURCE = Path(__file__).resolve().parent / "mpi_hello.c"
MARKER = ".workflows-run"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"run.py: {message}\n")


def _default(name: str) -> object:
    """A Settings field's default: the CLI never keeps a second copy."""
    return next(f.default for f in dataclasses.fields(Settings) if f.name == name)


def parser() -> argparse.ArgumentParser:
    d = _default
    p = _Parser(prog="python workflows/run.py", description=__doc__.split("\n")[0])
    p.add_argument("variant", choices=(*variants.REGISTRY, "clean"), help="executor variant, or clean")
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
    p.add_argument("--launcher", help=f"how each MPI run's ranks start: {', '.join(RANK_LAUNCHERS)} "
                                      "(default: the variant's first)")
    p.add_argument("--address", default=os.environ.get("LOCAL_CLUSTER_ADDRESS"),
                   help="address workers reach this machine at (default: $LOCAL_CLUSTER_ADDRESS or Parsl's guess)")
    p.add_argument("--run-timeout", type=float, default=d("run_timeout"), help="seconds before an MPI run is ended")
    p.add_argument("--retries", type=int, default=d("retries"),
                   help="retries of a failed MPI run (default %(default)s)")
    p.add_argument("--stall-timeout", type=float, default=d("stall_timeout"),
                   help="seconds with no block able to run (nodes down, blocks failed, Slurm silent) before giving up "
                        "(default %(default)s)")
    p.add_argument("--strategy-period", type=float, default=d("strategy_period"), help="Parsl scaling period, seconds")
    p.add_argument("--source", type=Path, default=SOURCE,
                   help="the MPI program's C source (default: workflows/mpi_hello.c; others must print its lines)")
    p.add_argument("--run-dir", type=Path, help="run directory (default runs/<variant>-<timestamp>)")
    p.add_argument("--json", action="store_true", help="print only the path of result.json")
    p.add_argument("--dry-run", action="store_true", help="with clean: list what would be removed")
    p.add_argument("--monitoring", action="store_true",
                   help=f"Parsl's MonitoringHub into RUN_DIR/{monitoring.DATABASE} (see: run.py visualize RUN_DIR)")
    p.add_argument("--screenshot", action="store_true",
                   help=f"with --monitoring: keep a headless Chromium screenshot of the run's parsl-visualize page "
                        f"as RUN_DIR/{monitoring.SCREENSHOT}")
    return p


def visualize_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python workflows/run.py visualize",
                description="Serve a monitored run's database with parsl-visualize on 127.0.0.1 until Ctrl-C.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory of a --monitoring run")
    p.add_argument("--port", type=int, help="port (default: a free one)")
    return p


def settings_from(args: argparse.Namespace, nodes: dict[str, int], run_dir: Path) -> Settings:
    use_spack = not args.no_spack and (bool(args.load) or shutil.which("spack") is not None)
    loads = tuple(args.load or environment.DEFAULT_LOADS) if use_spack else ()
    environment.check_order(loads)
    return Settings(
        variant=args.variant, run_dir=run_dir, repeats=args.repeats, nodes_per_run=args.nodes_per_run,
        cpus_per_node=min(nodes.values()), cluster_nodes=len(nodes), partition=args.partition,
        account=args.account, walltime=args.walltime, scheduler_options=args.scheduler_options,
        loads=loads, use_spack=use_spack, venv=environment.current_venv(), address=args.address,
        mpi=args.mpi, rank_launcher=args.launcher or variants.get(args.variant).rank_launchers[0],
        run_timeout=args.run_timeout, retries=args.retries,
        stall_timeout=args.stall_timeout, strategy_period=args.strategy_period,
        tag=f"parslmpi-{uuid.uuid4().hex[:12]}")


def checked_settings(args: argparse.Namespace) -> tuple[Settings, dict[str, int]]:
    """Arguments and the variant's needs first (nothing contacted), then the partition from Slurm."""
    run_dir = (args.run_dir or Path("runs") / f"{args.variant}-{time.strftime('%Y%m%d-%H%M%S')}").absolute()
    stand_in = {f"node{i}": 1 for i in range(max(1, args.nodes_per_run))}  # any partition the run fits
    s = settings_from(args, stand_in, run_dir)
    missing = variants.checked(s).unavailable(s)
    if missing:
        raise SettingsError(missing)
    if args.screenshot and not args.monitoring:
        raise SettingsError("--screenshot needs --monitoring (it shows the run's parsl-visualize page)")
    missing = monitoring.missing() if args.monitoring else None
    if missing:
        raise SettingsError(missing)
    nodes = slurm.partition_nodes(args.partition)
    return dataclasses.replace(s, cpus_per_node=min(nodes.values()), cluster_nodes=len(nodes)), nodes


def _spec(resources: dict | None) -> dict:
    return {} if resources is None else {"parsl_resource_specification": resources}


def _failure(what: str, err: BaseException, timeout: float) -> str:
    """One line for a failed app: `what` is 'run 3' or 'compiling the MPI program'."""
    from parsl.app.errors import BashExitFailure

    from workflows.apps import TIMED_OUT

    if isinstance(err, Stalled):
        return f"{what} {err}"
    if isinstance(err, BashExitFailure) and err.exitcode == TIMED_OUT:
        return f"{what} timed out after {timeout:g} s (--run-timeout)"
    return f"{what} failed: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"


def wait(futures: dict[int, Future], sampler: stall.BlockSampler, stall_timeout: float) -> dict[int, BaseException]:
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
                err = fut.exception()
                if err is not None:
                    failures[i] = err
        reason = sampler.stalled(stall_timeout) if pending else None
        if reason:
            for i in pending:
                failures[i] = Stalled(f"not finished: {reason} (--stall-timeout {stall_timeout:g})")
            break
    return failures


class Stalled(RuntimeError):
    """The run could not finish: no block of the workflow could run."""


def execute(s: Settings, source: Path = SOURCE, monitored: bool = False
            ) -> tuple[list[placement.Run], dict[int, str], dict]:
    """Run the workflow; returns the parsed runs, why runs failed (by index; -1 the compile), and extra facts.

    monitored: Parsl's MonitoringHub records the run in RUN_DIR/monitoring.db (its processes end with the DFK).
    """
    import parsl

    from workflows import apps

    variant = variants.get(s.variant)
    out = s.run_dir / "outputs"
    shutil.rmtree(out, ignore_errors=True)  # bash apps append: a reused run directory starts clean
    out.mkdir(parents=True)
    binary = str(s.run_dir / "mpi_hello")
    errors: dict[int, str] = {}
    variant.prepare(s)
    sampler = stall.BlockSampler(s.tag, s.partition, variant.block_nodes(s))
    config = variant.config(s)
    if monitored:
        config.monitoring = monitoring.hub(s)
    # A terminal's Ctrl-C goes to the whole process group. The processes Parsl starts while loading (HTEX's
    # interchange, the monitoring database and router) inherit SIGINT blocked, so it does not kill them: an
    # interchange dead of it leaves the DFK's cleanup waiting for its answer forever (jobs never cancelled),
    # and the monitoring database loses its last records. run.py takes the Ctrl-C (one pressed while loading
    # is held until the try below) and ends them in order. multiprocessing's resource tracker unblocks SIGINT
    # when it starts, so it is started first.
    resource_tracker.ensure_running()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        dfk = parsl.load(config)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    workflow_id = dfk.run_id
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        with sampler:
            line = apps.compile_line(compiler(s.mpi), str(source), binary)
            compiled = apps.compile_mpi(line, stdout=str(out / "compile.out"), stderr=str(out / "compile.err"),
                                        **_spec(variant.compile_resources(s)))
            failed = wait({-1: compiled}, sampler, s.stall_timeout)
            if failed:
                errors[-1] = _failure("compiling the MPI program", failed[-1], s.run_timeout) + (
                    f" (see {out / 'compile.err'})" if (out / "compile.err").exists() else "")
            command = apps.run_line(variant.run_command(s, binary), s.run_timeout,
                                    stamped=variant.wrapper_stamps(s))
            futures = {} if errors else {
                i: apps.mpi_run(command, stdout=str(out / f"run-{i}.out"), stderr=str(out / f"run-{i}.err"),
                                walltime=s.run_timeout + 30, **_spec(variant.run_resources(s)))
                for i in range(s.repeats)}
            # a failed run is reported, the others still verified
            for i, err in sorted(wait(futures, sampler, s.stall_timeout).items()):
                errors[i] = _failure(f"run {i}", err, s.run_timeout)
    finally:
        cancelled = _shut_down(dfk, s.tag)
    runs = []
    for i in range(s.repeats):
        path = out / f"run-{i}.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        runs.append(placement.parse(i, str(path.relative_to(s.run_dir)), text))
    extra = {"block_samples": sampler.samples, "cancelled_jobs": cancelled, "failed_runs": sorted(errors),
             "max_concurrent_runs": placement.max_concurrency(runs),
             "monitoring": monitoring_facts(s, workflow_id) if monitored else {"enabled": False, "database": None}}
    return runs, errors, extra


def monitoring_facts(s: Settings, workflow_id: str) -> dict:
    """What result.json says of a monitored run: the database, the workflow id and each task's final state
    as Parsl's own tables hold them."""
    db = monitoring.database(s.run_dir)
    facts: dict = {"enabled": True, "database": str(db), "workflow_id": workflow_id}
    try:
        recorded, tasks = monitoring.read(db)
    except monitoring.MonitoringError as err:
        return {**facts, "error": str(err)}
    if recorded != workflow_id:
        return {**facts, "error": f"{db} holds workflow {recorded}, not this run's {workflow_id}"}
    return {**facts, "tasks": [{"task_id": t.task_id, "app": t.app, "state": t.state, "tries": t.tries}
                               for t in tasks]}


def _shut_down(dfk: Any, tag: str) -> list[str]:
    """Parsl's cleanup, then every job of the run cancelled; neither may leave a process or job behind.

    Parsl's cleanup raises when Slurm went away under the run (its scancel times out) and then leaves
    the interchange running, which would keep a caller's pipes open: its processes are ended here.
    """
    import parsl

    try:
        dfk.cleanup()
    except Exception as err:
        print(f"run.py: Parsl's cleanup failed ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
              "ending its processes", file=sys.stderr, flush=True)
    finally:
        parsl.clear()
        _end_parsl_children()
    try:
        return slurm.cancel_tagged(tag, on_wait=_waiting_for)
    except slurm.SlurmError as err:
        print(f"run.py: could not cancel this run's jobs (tag {tag}): {err}", file=sys.stderr, flush=True)
        return []


def _end_parsl_children(grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL, to this process's children that Parsl started (they name themselves 'parsl: ...')."""
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            title = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == me and title.startswith(b"parsl:"):
            found.append(int(stat.parent.name))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while found and time.monotonic() < deadline:
            found = [pid for pid in found if Path(f"/proc/{pid}").exists() and not _reaped(pid)]
            time.sleep(0.05)


def _reaped(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    return True


def _waiting_for(jobs: list[str]) -> None:
    print(f"run.py: waiting for Slurm to end job(s) {' '.join(jobs)} (a node that died is let go only after "
          "SlurmdTimeout)", file=sys.stderr, flush=True)


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


def _log_thread_errors(log: Path) -> None:
    """Tracebacks of executor threads (e.g. FluxExecutor's when its instance dies with a node) go to the
    run directory, not the terminal: the runs they cost are reported one line each."""
    def hook(args: threading.ExceptHookArgs) -> None:
        with log.open("a") as f:
            f.write(f"--- thread {args.thread.name if args.thread else '?'}\n")
            traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=f)

    threading.excepthook = hook


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def visualize(argv: Sequence[str]) -> int:
    """run.py visualize RUN_DIR [--port N]: parsl-visualize on that run's database, on 127.0.0.1."""
    args = visualize_parser().parse_args(argv)
    missing = monitoring.missing()
    db = monitoring.database(args.run_dir.absolute())
    try:
        if missing:
            raise monitoring.MonitoringError(missing)
        workflow_id, tasks = monitoring.read(db)
        signal.signal(signal.SIGTERM, _interrupted)
        with monitoring.serving(db, args.port, log=args.run_dir.absolute() / "visualize.log") as base:
            print(f"parsl-visualize serving {db}\nworkflow {workflow_id} ({len(tasks)} tasks): "
                  f"{monitoring.workflow_page(base, workflow_id)}\n(Ctrl-C to stop)", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    except monitoring.MonitoringError as err:
        print(f"run.py: {err}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["visualize"]:
        return visualize(argv[1:])
    args = parser().parse_args(argv)
    if args.variant == "clean":
        return clean(args.dry_run)
    try:
        s, nodes = checked_settings(args)
    except (SettingsError, slurm.SlurmError, environment.LoadOrderError) as err:
        print(f"run.py: {err}", file=sys.stderr)
        return 2
    unsupported = variants.get(s.variant).monitoring_unsupported(s.rank_launcher) if args.monitoring else None
    if unsupported:
        print(f"run.py: --monitoring: {unsupported}; running without it", file=sys.stderr, flush=True)
    monitored = args.monitoring and not unsupported
    s.run_dir.mkdir(parents=True, exist_ok=True)
    (s.run_dir / MARKER).touch()
    # Parsl starts interchange.py from PATH: this interpreter's scripts must be found even unactivated.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    logging.getLogger("parsl").propagate = False  # Parsl's log goes to the run directory only
    _log_thread_errors(s.run_dir / "thread-errors.log")
    started = time.time()
    signal.signal(signal.SIGTERM, _interrupted)  # a killed run cancels its jobs too
    try:
        runs, errors, extra = execute(s, args.source.resolve(), monitored)
    except KeyboardInterrupt:
        print(f"run.py: interrupted; every Slurm job of this run was cancelled ({s.run_dir})", file=sys.stderr)
        return 130
    # Failed runs are reported as such; the placement of every run that completed must still hold.
    completed = [] if -1 in errors else [r for r in runs if r.index not in errors]
    problems = [errors[i] for i in sorted(errors)] + placement.verify(
        completed, repeats=None if errors else s.repeats, nodes_per_run=s.nodes_per_run, cpus_by_node=nodes)
    problems += variants.get(s.variant).problems(s, extra["block_samples"])
    if unsupported:
        extra["monitoring"]["unsupported"] = unsupported
    data = report.result(s, variants.label(s.variant, s.rank_launcher), runs, problems, time.time() - started,
                         {**extra, "partition_nodes": sorted(nodes)})
    if args.screenshot and monitored:
        try:
            extra["monitoring"]["screenshot"] = str(monitoring.screenshot(s.run_dir))
        except monitoring.MonitoringError as err:
            print(f"run.py: --screenshot: {err}", file=sys.stderr)
    path = report.write(s.run_dir, data)
    report.plot(data, s.run_dir / "placement.png")
    print(path if args.json else report.summary(data) + f"\nrun directory: {s.run_dir}")
    return 0 if data["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
