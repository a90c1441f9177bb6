"""A run's process around Parsl: prepare it, load Parsl, then end everything it started, however the run ends.

A terminal's Ctrl-C goes to the whole process group. The processes Parsl starts while loading (HTEX's
interchange, the monitoring database and router) inherit SIGINT blocked, so it does not kill them: an
interchange dead of it leaves the DFK's cleanup waiting for its answer forever (jobs never cancelled),
and the monitoring database loses its last records. This process takes the Ctrl-C (one pressed while
loading is held until Parsl is up) and ends them in order, then cancels every Slurm job of the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import slurm
from .settings import Settings

if TYPE_CHECKING:
    from parsl.config import Config

MARKER = ".workflows-run"  # in every run directory: what `clean` removes


@dataclasses.dataclass
class Session:
    """A loaded Parsl: its workflow id, and (once ended) the Slurm jobs of the run that were cancelled."""

    workflow_id: str
    cancelled_jobs: list[str] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def run_session(config: Config, s: Settings, name: str = "workflows") -> Iterator[Session]:
    """The run command's: this process prepared for the run (prepare_process), then Parsl loaded (parsl_loaded)."""
    prepare_process(s)
    with parsl_loaded(config, s.tag, name) as session:
        yield session


def prepare_process(s: Settings) -> None:
    """The run directory marked, Parsl's log and executor threads' tracebacks kept in it, SIGTERM as Ctrl-C."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    (s.run_dir / MARKER).touch()
    scripts_on_path()
    logging.getLogger("parsl").propagate = False  # Parsl's log goes to the run directory only
    log_thread_errors(s.run_dir / "thread-errors.log")
    interrupt_on_sigterm()  # a killed run cancels its jobs too


def scripts_on_path() -> None:
    """Parsl starts interchange.py from PATH: this interpreter's scripts must be found even unactivated."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@contextlib.contextmanager
def parsl_loaded(config: Config, tag: str, name: str = "workflows") -> Iterator[Session]:
    """Parsl loaded with config for the block; after it, Parsl shut down, its processes ended and every
    Slurm job carrying tag cancelled. name prefixes the lines said on stderr."""
    import parsl

    # multiprocessing's resource tracker unblocks SIGINT when it starts, so it is started first.
    resource_tracker.ensure_running()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        dfk = parsl.load(config)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    session = Session(dfk.run_id)
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # inside the try: a held Ctrl-C lands here
        yield session
    finally:
        session.cancelled_jobs = shut_down(dfk, tag, name)


def shut_down(dfk: Any, tag: str, name: str) -> list[str]:
    """Parsl's cleanup, then every job of the run cancelled; neither may leave a process or job behind.

    Parsl's cleanup raises when Slurm went away under the run (its scancel times out) and then leaves
    the interchange running, which would keep a caller's pipes open: its processes are ended here.
    """
    import parsl

    try:
        dfk.cleanup()
    except Exception as err:
        print(f"{name}: Parsl's cleanup failed ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
              "ending its processes", file=sys.stderr, flush=True)
    finally:
        parsl.clear()
        end_parsl_children()

    def waiting_for(jobs: list[str]) -> None:
        print(f"{name}: waiting for Slurm to end job(s) {' '.join(jobs)} (a node that died is let go only after "
              "SlurmdTimeout)", file=sys.stderr, flush=True)

    try:
        return slurm.cancel_tagged(tag, on_wait=waiting_for)
    except slurm.SlurmError as err:
        print(f"{name}: could not cancel this run's jobs (tag {tag}): {err}", file=sys.stderr, flush=True)
        return []


def end_parsl_children(grace: float = 3.0) -> None:
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


def log_thread_errors(log: Path) -> None:
    """Tracebacks of executor threads (e.g. FluxExecutor's when its instance dies with a node) go to the
    run directory, not the terminal: the runs they cost are reported one line each."""
    def hook(args: threading.ExceptHookArgs) -> None:
        with log.open("a") as f:
            f.write(f"--- thread {args.thread.name if args.thread else '?'}\n")
            traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=f)

    threading.excepthook = hook


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt as Ctrl-C does: a killed run cancels its jobs too."""
    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupted)
