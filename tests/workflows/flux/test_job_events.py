"""What a monitored Flux job becomes: Parsl's own worker-task messages, and a flux_job row beside Parsl's tables.

The journal end to end (a run's tries naming their nodes, parsl-visualize's pages) is in
tests/workflows/test_monitoring.py, on a real cluster.
"""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

from parsl.monitoring.db_manager import Database
from parsl.monitoring.message_type import MessageType

from workflows import monitoring
from workflows.flux.job_events import JobRecord, worker_task_info


def test_a_wait_status_is_an_exit_code_or_128_plus_its_signal():
    job = JobRecord(3, 0, "f1", "42")
    assert job.exit_code is None
    for status, code in ((0, 0), (3 << 8, 3), (9, 137), (15, 143)):
        job.status = status
        assert job.exit_code == code


def test_a_job_s_start_and_finish_are_parsl_s_first_and_last_worker_task_messages():
    job = JobRecord(7, 1, "f2", "99", nodes=["n1", "n2"], cores=4, start=1000.5, finish=1002.25)
    kind, first = worker_task_info("run-1", job, last=False)
    assert kind is MessageType.WORKER_TASK_INFO
    assert first == {"run_id": "run-1", "try_id": 1, "task_id": 7, "hostname": "n1,n2", "block_id": "99",
                     "first_msg": True, "last_msg": False, "timestamp": datetime.datetime.fromtimestamp(1000.5)}
    _, last = worker_task_info("run-1", job, last=True)
    assert last["last_msg"] and not last["first_msg"] and last["timestamp"] == datetime.datetime.fromtimestamp(1002.25)
    assert not JobRecord(1, 0, "f", "b", start=1.0).done and JobRecord(1, 0, "f", "b", exception="cancel: x").done


def parsl_database(tmp_path: Path) -> Path:
    """Parsl's own schema (its Database creates the tables), with a workflow of two tasks, one tried twice."""
    db = tmp_path / "monitoring.db"
    Database(monitoring.url(db)).session.close()
    con = sqlite3.connect(db)
    con.execute("INSERT INTO workflow (run_id, workflow_name, time_began, host, user, rundir, tasks_failed_count, "
                "tasks_completed_count) VALUES ('r', 'flux/flux', '2026-01-01', 'h', 'u', '/run', 0, 2)")
    con.executemany("INSERT INTO task (task_id, run_id, task_func_name, task_stdout, task_memoize, "
                    "task_fail_count, task_fail_cost) VALUES (?, 'r', ?, ?, 0, 0, 0)",
                    [(0, "compile_mpi", "/run/outputs/compile.out"), (1, "mpi_run", "/run/outputs/run-0.out")])
    con.executemany("INSERT INTO try (try_id, task_id, run_id, hostname, task_executor) VALUES (?, ?, 'r', ?, 'flux')",
                    [(0, 0, "n1"), (0, 1, None), (1, 1, None)])
    con.executemany("INSERT INTO status (task_id, task_status_name, timestamp, run_id, try_id) "
                    "VALUES (?, 'exec_done', '2026-01-01', 'r', ?)", [(0, 0), (1, 1)])
    con.commit()
    con.close()
    return db


def test_flux_jobs_go_beside_parsl_s_tables_and_name_each_task_s_nodes(tmp_path):
    db = parsl_database(tmp_path)
    from_journal = JobRecord(1, 0, "f3", "42", nodes=["n3", "n4"], cores=4, start=5.0, finish=6.0, status=0)
    from_output = {"stdout": "/run/outputs/run-0.out", "nodes": ["n1", "n2"], "cores": 4, "start": 7.0,
                   "source": "ranks' output"}  # its try: the task's last
    unknown = {"stdout": "/elsewhere.out", "nodes": ["n9"]}
    assert monitoring.record_jobs(db, "r", [from_journal.as_dict(), from_output, unknown]) == 2
    run_id, tasks = monitoring.read(db)
    assert run_id == "r"
    assert [(t.task_id, t.tries, t.nodes) for t in tasks] == [(0, 1, "n1"), (1, 2, "n1,n2")]
    con = sqlite3.connect(db)
    rows = con.execute("SELECT task_id, try_id, flux_job, exit_code, source FROM flux_job ORDER BY try_id").fetchall()
    con.close()
    assert rows == [(1, 0, "f3", 0, "flux job journal"), (1, 1, None, None, "ranks' output")]
    assert monitoring.task_lines(tasks) == ["  task 0 compile_mpi: exec_done, 1 try, on n1",
                                            "  task 1 mpi_run: exec_done, 2 tries, on n1,n2"]
    assert monitoring.record_jobs(db, "r", []) == 0
