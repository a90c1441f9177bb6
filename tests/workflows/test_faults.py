"""Faults on a real cluster of its own: a node dies or is set DOWN, slurmctld restarts, mid-run.

The MPI program holds each run for a few seconds after answering, so the fault lands while runs
are in flight. The workflow must not hang, must retry or report the runs that failed, and the
placement of every run that completed must still verify.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import cluster

from ..conftest import PROJECT, Cluster, running, spec_for
from .test_run import RUN, our_jobs

pytestmark = pytest.mark.cluster
HOLD_SECONDS = 8


@pytest.fixture(scope="module")
def fault_cluster() -> Iterator[Cluster]:
    """A cluster for these tests alone: nodes die here, the session's cluster stays whole."""
    with running(spec_for("fault-cluster", 2)) as up:
        yield up


@pytest.fixture
def whole(fault_cluster: Cluster) -> Iterator[Cluster]:
    """Every node idle before the test, and again after it."""
    for node in fault_cluster.spec.node_names:
        cluster.revive_node(fault_cluster.spec, node)
    yield fault_cluster
    for node in fault_cluster.spec.node_names:
        cluster.revive_node(fault_cluster.spec, node)


def holding_source(directory: Path) -> Path:
    """workflows/mpi_hello.c, but each rank stays HOLD_SECONDS after its line before finalizing."""
    text = (PROJECT / "workflows" / "mpi_hello.c").read_text()
    text = text.replace("#include <stdio.h>", "#include <stdio.h>\n#include <unistd.h>")
    text = text.replace("  MPI_Finalize();", f"  sleep({HOLD_SECONDS});\n  MPI_Finalize();")
    path = directory / "hold.c"
    path.write_text(text)
    return path


def start(env: dict, variant: str, run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*RUN, variant, "--no-spack", "--source", str(holding_source(run_dir.parent)),
                             "--run-dir", str(run_dir), "--stall-timeout", "15", *extra],
                            env=env, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def first_busy_node(proc: subprocess.Popen, run_dir: Path, runs: str = "*", timeout: float = 90) -> str:
    """A node on which an MPI run (one of `runs`, a glob of run indices) has answered and is still holding."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the workflow ended before the fault: {proc.communicate()}")
        for out in sorted((run_dir / "outputs").glob(f"run-{runs}.out")) if (run_dir / "outputs").is_dir() else []:
            hosts = re.findall(r"^Hello world from processor (\S+),", out.read_text(), re.MULTILINE)
            if hosts:
                return sorted(hosts)[-1]
        time.sleep(0.2)
    raise AssertionError("no MPI run answered")


def finish(proc: subprocess.Popen, run_dir: Path, timeout: float = 240) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert (run_dir / "result.json").exists(), out + err
    return json.loads((run_dir / "result.json").read_text())


@pytest.mark.parametrize("fault", ["killed", "set-down"])
def test_htex_retries_the_run_of_a_dead_node_on_other_nodes(whole, shared_dir, fault):
    run_dir = shared_dir / "run"
    proc = start(whole.env, "htex", run_dir)
    victim = first_busy_node(proc, run_dir)
    if fault == "killed":
        cluster.kill_node(whole.spec, victim)
    else:
        subprocess.run(["scontrol", "update", f"NodeName={victim}", "State=DOWN", "Reason=fault-test"],
                       env=whole.env, check=True)
    data = finish(proc, run_dir)
    assert proc.returncode == 0, data["problems"]
    assert data["verified"] and data["failed_runs"] == []
    retried = [r for r in data["runs"] if r["failed_attempts"]]
    assert len(retried) == 1 and victim in retried[0]["failed_attempts"][0]
    assert victim not in retried[0]["nodes"] and len(retried[0]["ranks"]) == 4
    assert our_jobs(whole.env) == []


def test_mpi_gives_up_clearly_when_its_block_can_no_longer_start(whole, shared_dir):
    run_dir = shared_dir / "run"
    started = time.monotonic()
    proc = start(whole.env, "mpi", run_dir)
    victim = first_busy_node(proc, run_dir, runs="[23]")  # runs 0 and 1 have completed by then
    cluster.kill_node(whole.spec, victim)
    data = finish(proc, run_dir)
    assert proc.returncode == 1 and not data["verified"]
    assert data["failed_runs"], "a run on the dead node cannot have succeeded"
    failures = [p for p in data["problems"] if re.match(r"run \d+ (failed|not finished)", p)]
    assert len(failures) == len(data["failed_runs"]) == len(data["problems"]), data["problems"]
    # Ended by the stall watch; why no block can run depends on whether Slurm has marked the node
    # down yet (SlurmdTimeout): the block gave itself back, or it needs 4 nodes of 3 usable.
    assert any("(--stall-timeout 15)" in p for p in failures), failures
    completed = [r for r in data["runs"] if r["index"] not in data["failed_runs"]]
    assert {0, 1} <= {r["index"] for r in completed}
    for r in completed:  # verified (problems hold only the failures), each on 2 nodes with 4 ranks
        assert len(r["nodes"]) == 2 and len(r["ranks"]) == 4
    assert time.monotonic() - started < 180
    assert our_jobs(whole.env) == []


def test_a_controller_restart_mid_run_does_not_stop_the_workflow(whole, shared_dir):
    run_dir = shared_dir / "run"
    proc = start(whole.env, "mpi", run_dir)
    first_busy_node(proc, run_dir)
    assert cluster.restart_controller(whole.spec).startswith("slurmctld restarted")
    data = finish(proc, run_dir)
    assert proc.returncode == 0 and data["verified"], data["problems"]
    assert [len(r["ranks"]) for r in data["runs"]] == [4, 4, 4, 4]
    assert our_jobs(whole.env) == []


def batch_host(env: dict) -> str:
    """The first node of this workflow's running block: where its Flux instance's rank 0 (and Parsl's side) runs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%B %k"], env=env, capture_output=True, text=True,
                             check=True).stdout
        hosts = [line.split()[0] for line in out.splitlines() if "parslmpi-" in line]
        if hosts:
            return hosts[0]
        time.sleep(0.2)
    raise AssertionError("no running block")


def busy_node_other_than(proc: subprocess.Popen, run_dir: Path, spared: str, timeout: float = 120) -> str:
    """A node (not `spared`) on which an MPI run has answered and is still holding."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the workflow ended before the fault: {proc.communicate()}")
        for out in sorted((run_dir / "outputs").glob("run-*.out")) if (run_dir / "outputs").is_dir() else []:
            text = out.read_text()
            if re.search(r"^# end ", text, re.MULTILINE):  # this run is over (the launch line quotes the stamps)
                continue
            hosts = set(re.findall(r"^Hello world from processor (\S+),", text, re.MULTILINE)) - {spared}
            if hosts:
                return sorted(hosts)[0]
        time.sleep(0.2)
    raise AssertionError("no MPI run answered on another node")


FLUX_RUNS = [pytest.param(["flux"], id="flux"), pytest.param(["mpi", "--launcher", "flux"], id="mpi-flux")]


@pytest.mark.parametrize("args", FLUX_RUNS)
def test_flux_rides_out_the_loss_of_a_node_that_is_not_the_first(whole, shared_dir, flux_ready, args):
    run_dir = shared_dir / "run"
    proc = start(whole.env, args[0], run_dir, *args[1:], "--repeats", "8")
    first = batch_host(whole.env)
    victim = busy_node_other_than(proc, run_dir, first)
    cluster.kill_node(whole.spec, victim)
    data = finish(proc, run_dir, timeout=400)
    assert proc.returncode == 0, data["problems"]
    assert data["verified"] and data["failed_runs"] == [] and len(data["runs"]) == 8
    retried = [r for r in data["runs"] if r["failed_attempts"]]
    assert retried and all(victim not in r["nodes"] for r in retried)
    assert all(len(r["ranks"]) == 4 for r in data["runs"])
    assert our_jobs(whole.env) == []


@pytest.mark.parametrize("args", FLUX_RUNS)
def test_flux_losing_its_first_node_ends_by_itself_with_a_line_per_lost_run(whole, shared_dir, flux_ready, args):
    run_dir = shared_dir / "run"
    started = time.monotonic()
    proc = start(whole.env, args[0], run_dir, *args[1:], "--repeats", "8")
    first_busy_node(proc, run_dir)
    cluster.kill_node(whole.spec, batch_host(whole.env))
    out, err = proc.communicate(timeout=400)
    data = json.loads((run_dir / "result.json").read_text())
    assert "Traceback" not in err, err
    assert time.monotonic() - started < 300
    completed = [r for r in data["runs"] if r["index"] not in data["failed_runs"]]
    if proc.returncode == 0:  # the lost runs were retried on a new block
        assert data["verified"] and data["failed_runs"] == []
    else:
        assert proc.returncode == 1 and data["failed_runs"]
        failures = [p for p in data["problems"] if re.match(r"run \d+ (failed|not finished)", p)]
        assert len(failures) == len(data["failed_runs"]) == len(data["problems"]), data["problems"]
    for r in completed:  # verified: the problems hold only the failures
        assert len(r["nodes"]) == 2 and len(r["ranks"]) == 4
    assert our_jobs(whole.env) == []  # completing jobs included


def parsl_processes() -> set[int]:
    """Processes on this machine that Parsl started (they name themselves 'parsl: ...')."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"parsl:"):
                found.add(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_a_cluster_that_goes_away_mid_run_ends_the_run_and_leaves_no_process(shared_dir):
    before = parsl_processes()
    with running(spec_for("vanishing-cluster", 3)) as gone:
        run_dir = shared_dir / "run"
        proc = start(gone.env, "htex", run_dir)
        first_busy_node(proc, run_dir)
        cluster.down(gone.spec)
        out, err = proc.communicate(timeout=240)  # a Parsl process left alive would keep these pipes open
    assert proc.returncode != 0, out
    assert "Traceback" not in err, err
    assert parsl_processes() <= before
