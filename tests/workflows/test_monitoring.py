"""run.py --monitoring: Parsl's own database in the run directory, served by parsl-visualize, seen in Chromium.

Every process a test starts (run.py, run.py visualize, Chromium) runs under a child subreaper (REAPER): whatever
it leaves behind is reparented to the reaper, which reports it (and ends it): nothing may be left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from workflows import monitoring, variants
from workflows.settings import Settings

from ..conftest import PROJECT
from ..needs import require

RUN = [sys.executable, str(PROJECT / "workflows" / "run.py")]

# python -c REAPER OUT CMD...: runs CMD (in a session of its own) as a child subreaper (PR_SET_CHILD_SUBREAPER),
# forwards SIGINT/SIGTERM to it, exits with its code; then writes to OUT (JSON) the command lines of the processes
# still left under it after a grace of 15 s, and ends them.
REAPER = r"""
import ctypes, json, os, signal, subprocess, sys, time
import psutil
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
child = subprocess.Popen(sys.argv[2:], start_new_session=True)
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda s, _f: child.send_signal(s))
rc = child.wait()
me, left, deadline = psutil.Process(), [], time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    left = [p for p in me.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    if not left:
        break
    time.sleep(0.2)
lines = []
for p in left:
    try:
        lines.append(" ".join(p.cmdline()) or p.name())
        p.kill()
    except psutil.Error:
        pass
open(sys.argv[1], "w").write(json.dumps(lines))
sys.exit(rc)
"""


def reaped(out: Path, cmd: list[str]) -> list[str]:
    return [sys.executable, "-c", REAPER, str(out), *cmd]


def left_behind(out: Path) -> list[str]:
    return json.loads(out.read_text())


def our_jobs(env) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %k"], env=env, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "parslmpi-" in line]


def need_chromium() -> None:
    require(None if monitoring.chromium() else "chromium not found (scripts/setup.sh installs Debian's chromium)")


def final_states(db: Path) -> tuple[str, list[tuple[int, str, str]]]:
    """Read Parsl's tables directly: (workflow id, [(task id, app, last status)])."""
    con = sqlite3.connect(db)
    try:
        (run_id,) = con.execute("SELECT run_id FROM workflow").fetchone()
        rows = con.execute("SELECT task_id, task_func_name FROM task WHERE run_id = ? ORDER BY task_id",
                           (run_id,)).fetchall()
        states = []
        for task_id, app in rows:
            (state,) = con.execute("SELECT task_status_name FROM status WHERE run_id = ? AND task_id = ? "
                                   "ORDER BY timestamp DESC, rowid DESC LIMIT 1", (run_id, task_id)).fetchone()
            states.append((task_id, app, state))
        return run_id, states
    finally:
        con.close()


def tries(db: Path, run_id: str) -> dict[int, list[tuple]]:
    """Parsl's try rows by task: (try id, hostname, launched, running, returned)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT task_id, try_id, hostname, task_try_time_launched, task_try_time_running, "
                           "task_try_time_returned FROM try WHERE run_id = ? ORDER BY task_id, try_id",
                           (run_id,)).fetchall()
    finally:
        con.close()
    out: dict[int, list[tuple]] = {}
    for task_id, *rest in rows:
        out.setdefault(task_id, []).append(tuple(rest))
    return out


def flux_jobs(db: Path, run_id: str) -> list[dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM flux_job WHERE run_id = ? ORDER BY task_id", (run_id,))]
    finally:
        con.close()


def statuses(db: Path, run_id: str, task_id: int) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [s for (s,) in con.execute("SELECT task_status_name FROM status WHERE run_id = ? AND task_id = ? "
                                          "ORDER BY timestamp, rowid", (run_id, task_id))]
    finally:
        con.close()


def stdouts(db: Path, run_id: str) -> dict[int, str]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT task_id, task_stdout FROM task WHERE run_id = ?", (run_id,)).fetchall())
    finally:
        con.close()


def check_flux_records(db: Path, run_id: str, run_dir: Path, data: dict, variant: str) -> None:
    """Under Flux each MPI run's task names the nodes its Flux job got (its ranks' hosts); flux_job holds each job."""
    nodes_of = {str(run_dir / r["output"]): r["nodes"] for r in data["runs"]}
    out = stdouts(db, run_id)
    runs = [t for t in data["monitoring"]["tasks"] if t["app"] == "mpi_run"]
    by_task = {j["task_id"]: j for j in flux_jobs(db, run_id)}
    assert len(runs) == 3
    for task in runs:
        job = by_task[task["task_id"]]
        assert sorted(job["nodes"].split(",")) == nodes_of[out[task["task_id"]]]  # where its ranks said they ran
        assert task["nodes"] == job["nodes"] and job["cores"] == 4 and job["try_id"] == 0
    if variant == "flux":  # from Flux's own job journal: the job id, exit status and times, and Parsl's try rows
        assert len(by_task) == 4  # the compile too
        for task_id, job in by_task.items():
            assert job["source"] == "flux job journal" and job["exit_code"] == 0 and job["flux_job"]
            assert job["submit"] <= job["alloc"] <= job["start"] <= job["finish"]
            ((_, hostname, launched, running, returned),) = tries(db, run_id)[task_id]
            assert hostname == job["nodes"] and launched <= running <= returned
            assert statuses(db, run_id, task_id)[-3:] == ["running", "running_ended", "exec_done"]
    else:  # mpi --launcher flux: the runs' nodes from their ranks; Parsl's try names the worker's node
        assert {j["source"] for j in by_task.values()} == {"ranks' output"}


@pytest.mark.cluster
@pytest.mark.parametrize("variant", ["htex", "mpi", "flux", "mpi-flux"])
def test_a_monitored_run_records_one_task_per_app_with_its_final_state(slurm_cluster, shared_dir, request, variant):
    if variant in ("htex", "flux"):
        need_chromium()
    if "flux" in variant:
        request.getfixturevalue("flux_ready")
    run_dir, left = shared_dir / "run", shared_dir / "left.json"
    extra = ["--screenshot"] if variant in ("htex", "flux") else []
    args = {"mpi-flux": ["mpi", "--launcher", "flux"]}.get(variant, [variant])
    proc = subprocess.run(reaped(left, [*RUN, *args, "--no-spack", "--repeats", "3", "--nodes-per-run", "2",
                                        "--monitoring", *extra, "--run-dir", str(run_dir)]),
                          env=slurm_cluster.env, capture_output=True, text=True, timeout=400, cwd=PROJECT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert left_behind(left) == []  # no monitoring process (nor interchange, visualize, Chromium) outlived the run
    assert our_jobs(slurm_cluster.env) == []
    data = json.loads((run_dir / "result.json").read_text())
    assert data["verified"], data["problems"]
    db = run_dir / "monitoring.db"
    m = data["monitoring"]
    assert m["enabled"] is True and m["database"] == str(db) and db.is_file()
    run_id, states = final_states(db)
    assert m["workflow_id"] == run_id
    assert f"monitoring: workflow {run_id} in {db}: 4 tasks (4 exec_done)" in proc.stdout
    # compile + each MPI run, each once, each done (Parsl's final state)
    assert sorted(app for _, app, _ in states) == ["compile_mpi", "mpi_run", "mpi_run", "mpi_run"]
    assert {state for _, _, state in states} == {"exec_done"}
    assert [t["state"] for t in m["tasks"]] == ["exec_done"] * 4
    if "flux" in variant:
        check_flux_records(db, run_id, run_dir, data, variant)
    if variant in ("htex", "flux"):
        shot = Path(m["screenshot"])
        assert shot == run_dir / "monitoring.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        check_visualize(run_dir, run_id, shared_dir, {"htex": "htex/mpirun", "flux": "flux/flux"}[variant],
                        {t["task_id"]: t["nodes"] for t in m["tasks"]} if variant == "flux" else None)


BROWSE = "import sys; from workflows import monitoring; sys.stdout.write(monitoring.browse(sys.argv[1]))"


def browse(page: str, scratch: Path) -> str:
    """The page's DOM as a real headless Chromium sees it; nothing of Chromium may be left after."""
    left = scratch / f"left-browse-{time.monotonic_ns()}.json"
    proc = subprocess.run(reaped(left, [sys.executable, "-c", BROWSE, page]), cwd=PROJECT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert left_behind(left) == []
    return proc.stdout


def check_visualize(run_dir: Path, run_id: str, scratch: Path, name: str, nodes: dict[int, str] | None) -> None:
    """run.py visualize on the run: the workflow page and its task list, loaded in a real headless Chromium;
    with nodes, the tasks' lines it prints name them, and each MPI run's task page shows it running."""
    port = monitoring.free_port()
    left = scratch / "left-visualize.json"
    server = subprocess.Popen(reaped(left, [*RUN, "visualize", str(run_dir), "--port", str(port)]), cwd=PROJECT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(7)]  # printed once parsl-visualize answers
        page = f"http://127.0.0.1:{port}/workflow/{run_id}/"
        assert lines[1].startswith(f"workflow {run_id} (4 tasks): {page}"), lines
        for task_id, on in (nodes or {}).items():
            assert any(line.startswith(f"  task {task_id} ") and line.rstrip().endswith(f"on {on}")
                       for line in lines[3:]), lines
            if "," in on:  # an MPI run: its own page shows Flux's start and end of its job
                task_page = browse(f"{page}task/{task_id}", scratch)
                assert "running_ended" in task_page and "exec_done" in task_page
        front = browse(f"http://127.0.0.1:{port}/", scratch)
        workflow = browse(page, scratch)
        listing = browse(f"{page}task/", scratch)
        assert run_id in front and name in front  # the workflow is listed, named after the variant
        assert name in workflow and "compile_mpi" in workflow and "mpi_run" in workflow
        assert "Plotly.newPlot" in workflow  # the page carries its task charts (drawn where cdn.plot.ly is reached)
        assert len(re.findall(r">\s*mpi_run\s*<", listing)) == 3 and len(re.findall(r">\s*compile_mpi\s*<", listing))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
    assert server.returncode == 0
    assert left_behind(left) == []  # parsl-visualize ended with it


@pytest.mark.cluster
@pytest.mark.parametrize("to", ["run.py", "its process group"])
def test_sigint_during_a_monitored_run_leaves_no_job_and_no_process(slurm_cluster, shared_dir, to):
    """SIGINT to run.py alone, or to its whole process group as a terminal's Ctrl-C sends it (Parsl's interchange
    and monitoring processes get it too): exit 130, every job cancelled, no process left."""
    left = shared_dir / "left.json"
    proc = subprocess.Popen(reaped(left, [*RUN, "htex", "--no-spack", "--monitoring", "--run-dir",
                                          str(shared_dir / "run")]),
                            env=slurm_cluster.env, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not our_jobs(slurm_cluster.env) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert our_jobs(slurm_cluster.env), "the run submitted no block"
    (run,) = psutil.Process(proc.pid).children()
    titles = [" ".join(p.cmdline()) for p in run.children(recursive=True)]
    assert any("parsl: monitoring database" in t for t in titles), titles
    if to == "run.py":
        run.send_signal(signal.SIGINT)
    else:
        os.killpg(run.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert our_jobs(slurm_cluster.env) == []
    assert left_behind(left) == []


def test_which_variants_parsl_monitoring_supports_follows_from_their_executors(shared_dir):
    """The DFK monitors a task only through its executor's remote_monitoring_radio (RadioRequiredError otherwise):
    each variant's hook says so exactly where the executor its config builds has none."""
    support = {}
    for c in variants.choices():
        s = Settings(variant=c.variant, run_dir=shared_dir / c.label.replace("/", "-"), rank_launcher=c.rank_launcher,
                     repeats=2)
        (executor,) = variants.get(c.variant).config(s).executors
        why = variants.get(c.variant).monitoring_unsupported(s)
        assert (why is None) == (executor.remote_monitoring_radio is not None), c.label
        support[c.label] = why
        thread = getattr(executor, "_submission_thread", None)
        if thread is not None and thread.ident is None:  # FluxExecutor joins it at exit, started or not
            thread._target = None
            thread.start()
    assert [label for label, why in support.items() if why is None] == ["htex", "static", "mpi", "mpi/flux", "flux"]
    s = Settings(variant="flux", run_dir=shared_dir / "parsl-wrapper", rank_launcher="flux", repeats=2,
                 variant_options=(("flux_wrapper", "parsl"),))
    (executor,) = variants.get("flux").config(s).executors
    why = variants.get("flux").monitoring_unsupported(s)
    assert executor.remote_monitoring_radio is None and "--flux-wrapper parsl" in (why or "")
    thread = getattr(executor, "_submission_thread", None)
    if thread is not None and thread.ident is None:
        thread._target = None
        thread.start()


@pytest.mark.parametrize("args, word", [
    (["htex", "--screenshot"], "--screenshot needs --monitoring"),
    (["visualize", "/nonexistent/run"], "no monitoring database at /nonexistent/run/monitoring.db"),
])
def test_monitoring_misuse_is_one_line_and_contacts_nothing(args, word):
    env = {**os.environ, "SLURM_CONF": "/nonexistent/slurm.conf"}
    proc = subprocess.run([*RUN, *args, "--no-spack"] if args[0] != "visualize" else [*RUN, *args], env=env,
                          capture_output=True, text=True, cwd=PROJECT, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert word in proc.stderr
