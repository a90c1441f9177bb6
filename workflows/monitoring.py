"""Parsl's own monitoring for a run: MonitoringHub writing RUN_DIR/monitoring.db, read back, served, seen.

The database is Parsl's (its workflow, task, status and try tables), parsl-visualize serves it, and a
headless Chromium looks at the page as a person would. The one table of ours, flux_job, is written after
Parsl closed the database: each Flux job of a run under Flux (its nodes, cores, times, exit status), which
no table of Parsl's has a place for.
Every process started here (parsl-visualize, Chromium) is started in its own session and ended,
with its whole group, before the function that started it returns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import WorkflowsError

DATABASE = "monitoring.db"
SCREENSHOT = "monitoring.png"
HOW_TO_GET = "run scripts/setup.sh (or pip install -e '.[monitoring]')"
# parsl-visualize's pages name Bootstrap, jQuery and Plotly on public CDNs: the browser here resolves no name but
# the loopback's, so it sends nothing off this machine (the pages' tables show; their Plotly charts need the CDN).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")


class MonitoringError(WorkflowsError, RuntimeError):
    """What the monitoring tools could not do; the message is one line."""

    refused = True


def database(run_dir: Path) -> Path:
    return run_dir / DATABASE


def url(db: Path) -> str:
    """The SQLAlchemy URL of a database file (absolute: sqlite:////abs/path)."""
    return f"sqlite:///{db.absolute()}"


def missing() -> str | None:
    """Why Parsl's monitoring cannot start in this Python (one line), or None."""
    for module in ("sqlalchemy", "flask", "pandas", "plotly", "networkx"):
        try:
            __import__(module)
        except ImportError:
            return f"--monitoring needs parsl[monitoring,visualization] ({module} does not import): {HOW_TO_GET}"
    return None


FLUX_JOB = "flux_job"
FLUX_JOB_COLUMNS = ("run_id", "task_id", "try_id", "flux_job", "block", "nodes", "cores", "submit", "alloc", "start",
                    "finish", "status", "exit_code", "exception", "source")


@dataclass(frozen=True)
class Task:
    task_id: int
    app: str
    state: str  # the last status Parsl recorded (exec_done, failed, ...)
    tries: int
    nodes: str = ""  # where its last try ran: its Flux job's nodes (flux_job), else the try's host in Parsl's table


def read(db: Path) -> tuple[str, list[Task]]:
    """The last workflow in the database and its tasks, each with its final state, from Parsl's own tables."""
    if not db.is_file():
        raise MonitoringError(f"no monitoring database at {db} (run with --monitoring)")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT run_id FROM workflow ORDER BY time_began DESC LIMIT 1").fetchone()
        if row is None:
            raise MonitoringError(f"{db} holds no workflow")
        run_id = row[0]
        rows = con.execute(
            "SELECT t.task_id, t.task_func_name,"
            " (SELECT s.task_status_name FROM status s WHERE s.run_id = t.run_id AND s.task_id = t.task_id"
            "  ORDER BY s.timestamp DESC, s.rowid DESC LIMIT 1),"
            " (SELECT COUNT(*) FROM try y WHERE y.run_id = t.run_id AND y.task_id = t.task_id),"
            " (SELECT y.hostname FROM try y WHERE y.run_id = t.run_id AND y.task_id = t.task_id"
            "  ORDER BY y.try_id DESC LIMIT 1)"
            " FROM task t WHERE t.run_id = ? ORDER BY t.task_id", (run_id,)).fetchall()
        flux_nodes = dict(con.execute(
            f"SELECT task_id, nodes FROM {FLUX_JOB} WHERE run_id = ? ORDER BY try_id, start", (run_id,)).fetchall()
            if _has_table(con, FLUX_JOB) else [])
    except sqlite3.Error as err:
        raise MonitoringError(f"{db}: {err}") from err
    finally:
        con.close()
    return run_id, [Task(int(i), str(app), str(state or "?"), int(n), str(flux_nodes.get(i) or host or ""))
                    for i, app, state, n, host in rows]


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def job_row(run_id: str, job: dict, tasks_by_stdout: dict[str, int], last_try: dict[int, int]) -> tuple | None:
    """A flux_job row of a record (workflows.flux.job_events, or a run's output): its task found by id or stdout."""
    task_id = job.get("task_id")
    if task_id is None:
        task_id = tasks_by_stdout.get(str(job.get("stdout")))
    if task_id is None:
        return None
    try_id = job.get("try_id")
    values = {**job, "run_id": run_id, "task_id": task_id, "nodes": ",".join(job.get("nodes") or []),
              "try_id": last_try.get(task_id, 0) if try_id is None else try_id}
    return tuple(values.get(c) for c in FLUX_JOB_COLUMNS)


def record_jobs(db: Path, run_id: str, jobs: list[dict]) -> int:
    """Write the run's Flux jobs into RUN_DIR/monitoring.db's flux_job table, after Parsl closed it; how many."""
    if not jobs or not db.is_file():
        return 0
    con = sqlite3.connect(db)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {FLUX_JOB} ({', '.join(FLUX_JOB_COLUMNS)})")
        by_stdout = {str(out): int(t) for t, out in con.execute(
            "SELECT task_id, task_stdout FROM task WHERE run_id = ?", (run_id,))}
        last_try = {int(t): int(n) for t, n in con.execute(
            "SELECT task_id, MAX(try_id) FROM try WHERE run_id = ? GROUP BY task_id", (run_id,))}
        rows = [r for r in (job_row(run_id, j, by_stdout, last_try) for j in jobs) if r is not None]
        con.executemany(f"INSERT INTO {FLUX_JOB} VALUES ({', '.join('?' * len(FLUX_JOB_COLUMNS))})", rows)
        con.commit()
        return len(rows)
    except sqlite3.Error as err:
        raise MonitoringError(f"{db}: {err}") from err
    finally:
        con.close()


def facts(run_dir: Path, workflow_id: str) -> dict:
    """What result.json says of a monitored run: the database, the workflow id and each task's final state
    as Parsl's own tables hold them (or why they could not be read)."""
    db = database(run_dir)
    found: dict = {"enabled": True, "database": str(db), "workflow_id": workflow_id}
    try:
        recorded, tasks = read(db)
    except MonitoringError as err:
        return {**found, "error": str(err)}
    if recorded != workflow_id:
        return {**found, "error": f"{db} holds workflow {recorded}, not this run's {workflow_id}"}
    return {**found, "tasks": [{"task_id": t.task_id, "app": t.app, "state": t.state, "tries": t.tries,
                                "nodes": t.nodes} for t in tasks]}


def task_lines(tasks: list[Task]) -> list[str]:
    """What `visualize` prints of each task: its app, final state, tries and the node(s) its last try ran on."""
    return [f"  task {t.task_id} {t.app}: {t.state}, {t.tries} tr{'y' if t.tries == 1 else 'ies'}"
            + (f", on {t.nodes}" if t.nodes else "") for t in tasks]


def disabled(unsupported: str | None = None) -> dict:
    """result.json's monitoring facts of a run without it (unsupported: why --monitoring was off)."""
    return {"enabled": False, "database": None, **({"unsupported": unsupported} if unsupported else {})}


def after_run(run_dir: Path, workflow_id: str, jobs: list[dict], screenshot_too: bool = False,
              name: str = "workflows") -> dict:
    """The run's step after Parsl closed the database: our table of its Flux jobs written (record_jobs), its
    facts read back for result.json, and with screenshot_too its workflow page kept as RUN_DIR/monitoring.png
    (a failure to is said on stderr, after name, and loses nothing else)."""
    record_jobs(database(run_dir), workflow_id, jobs)
    found = facts(run_dir, workflow_id)
    if screenshot_too:
        try:
            found["screenshot"] = str(screenshot(run_dir))
        except MonitoringError as err:
            print(f"{name}: --screenshot: {err}", file=sys.stderr)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _end_group(proc: subprocess.Popen) -> None:
    """End a process started with start_new_session=True, and every process of its group."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived their leader


def visualize_command(db: Path, port: int) -> list[str]:
    """parsl-visualize (this Python's), on 127.0.0.1 only."""
    return [sys.executable, "-m", "parsl.monitoring.visualization.app", "--listen", "127.0.0.1",
            "--port", str(port), url(db)]


@contextlib.contextmanager
def serving(db: Path, port: int | None = None, log: Path | None = None, timeout: float = 60.0) -> Iterator[str]:
    """parsl-visualize on the database for the block; yields its base URL, ends it (and its group) after."""
    if not db.is_file():
        raise MonitoringError(f"no monitoring database at {db} (run with --monitoring)")
    port = port or free_port()
    out = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(visualize_command(db, port), stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise MonitoringError(f"parsl-visualize exited with {proc.returncode} before serving {base}"
                                      + (f" (see {log})" if log else ""))
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise MonitoringError(f"parsl-visualize did not answer at {base} within {timeout:g} s")
            time.sleep(0.2)
        yield base
    finally:
        _end_group(proc)
        if log:
            out.close()  # type: ignore[union-attr]


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def browse(page: str, *, screenshot: Path | None = None, timeout: float = 90.0) -> str:
    """The page's DOM after its scripts ran, seen by a headless Chromium with a fresh profile; with
    screenshot, a PNG of it too. Chromium and every process it started are ended before this returns."""
    browser = chromium()
    if browser is None:
        raise MonitoringError("chromium not found: apt-get install chromium (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="workflows-chromium-") as profile:
        base = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000"]
        cmds = [[*base, "--dump-dom", page]]
        if screenshot is not None:
            cmds.append([*base, "--hide-scrollbars", "--window-size=1280,1400", f"--screenshot={screenshot}", page])
        dom = ""
        for i, cmd in enumerate(cmds):
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    start_new_session=True, cwd=profile)
            try:
                stdout, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired as err:
                raise MonitoringError(f"chromium did not finish with {page} within {timeout:g} s") from err
            finally:
                _end_group(proc)
            if proc.returncode != 0:
                raise MonitoringError(f"chromium exited with {proc.returncode} on {page}")
            if i == 0:
                dom = stdout.decode(errors="replace")
                if not dom.strip():  # Chromium exits 0 on a page that failed to load, with nothing to show
                    raise MonitoringError(f"chromium could not load {page}")
    if screenshot is not None and not screenshot.is_file():
        raise MonitoringError(f"chromium wrote no screenshot of {page}")
    return dom


def workflow_page(base: str, run_id: str) -> str:
    return f"{base}/workflow/{run_id}/"


def tasks_page(base: str, run_id: str) -> str:
    return f"{base}/workflow/{run_id}/task/"


def screenshot(run_dir: Path) -> Path:
    """Serve the run's database and keep a screenshot of its workflow page as RUN_DIR/monitoring.png."""
    db = database(run_dir)
    run_id, _ = read(db)
    path = run_dir / SCREENSHOT
    with serving(db, log=run_dir / "visualize.log") as base:
        browse(workflow_page(base, run_id), screenshot=path)
    return path
