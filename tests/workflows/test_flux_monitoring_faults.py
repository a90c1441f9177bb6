"""A monitored flux run that loses its block's first node: Parsl's database follows the runs to the new block.

The executor resubmits the unfinished jobs to the replacement instance without the DFK knowing (no new try):
each such task keeps its one try, whose host becomes the new Flux job's nodes, and flux_job holds both jobs.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from .test_faults import assert_survived, big, big_cluster, lose_first_nodes, start  # noqa: F401 - fixtures

pytestmark = pytest.mark.cluster


def test_a_monitored_flux_run_records_where_its_resubmitted_runs_ran(big, shared_dir, flux_ready):  # noqa: F811
    run_dir = shared_dir / "run"
    proc = start(big.env, "flux", run_dir, "--repeats", "6", "--retries", "0", "--stall-timeout", "30",
                 "--monitoring")
    victims = lose_first_nodes(big.env, big.spec, proc, run_dir, 1)
    out, err = proc.communicate(timeout=240)
    data = json.loads((run_dir / "result.json").read_text())
    assert_survived(data, err, victims, proc.returncode)
    (lost,) = data["lost_blocks"]
    con = sqlite3.connect(run_dir / "monitoring.db")
    try:
        task_of = {out: t for t, out in con.execute("SELECT task_id, task_stdout FROM task")}
        for run in lost["resubmitted"]:
            task = task_of[str(run_dir / data["runs"][run]["output"])]
            jobs = con.execute("SELECT block, nodes, try_id FROM flux_job WHERE task_id = ? ORDER BY start",
                               (task,)).fetchall()
            ((try_id, host),) = con.execute("SELECT try_id, hostname FROM try WHERE task_id = ?", (task,)).fetchall()
            assert try_id == 0 and [j[2] for j in jobs] == [0] * len(jobs)  # no retry: the DFK saw nothing
            assert jobs[-1][0] == lost["replacement"] and host == jobs[-1][1]  # the try ran last on the new block
            assert sorted(host.split(",")) == data["runs"][run]["nodes"] and victims[0] not in host
            if len(jobs) > 1:  # it had started on the lost block: that job is recorded too
                assert jobs[0][0] == lost["job"]
    finally:
        con.close()
