"""Faults on a real cluster of its own: a node dies or is set DOWN, slurmctld restarts, mid-run.

The MPI program holds each run for a few seconds after answering, so the fault lands while runs
are in flight. The workflow must not hang, must retry or report the runs that failed, and the
placement of every run that completed must still verify. A block that loses its first node (where
its worker pool or Flux's rank 0 runs) is replaced by a new block, its unfinished runs run there,
and that costs no --retries (the tests run with --retries 0).
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


def revived(up: Cluster) -> Iterator[Cluster]:
    """Every node of the cluster idle before the test, and again after it (the body of a fixture)."""
    for node in up.spec.node_names:
        cluster.revive_node(up.spec, node)
    yield up
    for node in up.spec.node_names:
        cluster.revive_node(up.spec, node)


@pytest.fixture
def whole(fault_cluster: Cluster) -> Iterator[Cluster]:
    yield from revived(fault_cluster)


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


SHARED_BLOCKS = [*FLUX_RUNS, pytest.param(["mpi"], id="mpi")]  # every variant whose block holds several runs
BIG = 6  # nodes: the block takes them all (3 runs of 2 at once); after a loss, 4 of the 5 left


@pytest.fixture(scope="module")
def big_cluster() -> Iterator[Cluster]:
    """A cluster whose first block can lose its first node and its replacement too, with runs left to run."""
    with running(spec_for("lost-first-node", nodes=BIG)) as up:
        yield up


@pytest.fixture
def big(big_cluster: Cluster) -> Iterator[Cluster]:
    yield from revived(big_cluster)


def running_block(env: dict, other_than: set[str], timeout: float = 90) -> tuple[str, str]:
    """(job, first node) of a running block of this workflow that is not one of other_than."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i %B %k"], env=env, capture_output=True, text=True,
                             check=True).stdout
        blocks = [line.split()[:2] for line in out.splitlines() if "parslmpi-" in line]
        blocks = [(job, host) for job, host in blocks if job not in other_than]
        if blocks:
            return blocks[0][0], blocks[0][1]
        time.sleep(0.2)
    raise AssertionError(f"no running block but {other_than}")


def output_sizes(run_dir: Path) -> dict[Path, int]:
    outputs = run_dir / "outputs"
    return {out: out.stat().st_size for out in outputs.glob("run-*.out")} if outputs.is_dir() else {}


def holding_on(proc: subprocess.Popen, run_dir: Path, host: str, since: dict[Path, int], timeout: float = 120) -> None:
    """Until an MPI run that is not over has answered on host (the node about to be killed), in what the
    outputs got after `since` (their sizes then: a lost attempt never ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the workflow ended before the fault: {proc.communicate()}")
        for out in sorted((run_dir / "outputs").glob("run-*.out")) if (run_dir / "outputs").is_dir() else []:
            text = out.read_bytes()[since.get(out, 0):].decode(errors="replace")
            hosts = re.findall(r"^Hello world from processor (\S+),", text, re.MULTILINE)
            if host in hosts and not re.search(r"^# end ", text.split(f"processor {host},")[-1], re.MULTILINE):
                return
        time.sleep(0.2)
    raise AssertionError(f"no MPI run answered on {host}")


def lose_first_nodes(env: dict, spec, proc: subprocess.Popen, run_dir: Path, times: int) -> list[str]:
    """Kill the first node of the running block `times` times, each while a run holds there: the victims."""
    victims: list[str] = []
    jobs: set[str] = set()
    for _ in range(times):
        job, host = running_block(env, jobs)
        holding_on(proc, run_dir, host, output_sizes(run_dir))
        cluster.kill_node(spec, host)
        victims.append(host)
        jobs.add(job)
    return victims


def assert_survived(data: dict, err: str, victims: list[str], returncode: int) -> None:
    assert returncode == 0, data["problems"]
    assert "Traceback" not in err, err
    assert data["verified"] and data["failed_runs"] == [] and len(data["runs"]) == 6
    assert all(len(r["ranks"]) == 4 for r in data["runs"])
    lost = data["lost_blocks"]
    assert [b["node"] for b in lost] == victims, lost
    for block in lost:
        assert block["resubmitted"] and block["replacement"] != block["job"], block
        for run in block["resubmitted"]:  # run again, to the end, off the dead nodes (held or still queued then)
            assert not set(block["ran_on"][str(run)]) & set(victims)
        # a run that held on the dead node when it died is among them, its lost attempt reported
        assert any(block["node"] in a for run in block["resubmitted"] for a in data["runs"][run]["failed_attempts"])


@pytest.mark.parametrize("args", SHARED_BLOCKS)
@pytest.mark.parametrize("losses", [1, 2], ids=["first-block", "and-its-replacement"])
def test_losing_a_blocks_first_node_is_survived_on_a_new_block(big, shared_dir, request, args, losses):
    if args != ["mpi"]:
        request.getfixturevalue("flux_ready")
    run_dir = shared_dir / "run"
    started = time.monotonic()
    proc = start(big.env, args[0], run_dir, *args[1:], "--repeats", "6", "--retries", "0", "--stall-timeout", "30")
    victims = lose_first_nodes(big.env, big.spec, proc, run_dir, losses)
    out, err = proc.communicate(timeout=240)
    data = json.loads((run_dir / "result.json").read_text())
    assert_survived(data, err, victims, proc.returncode)
    assert "lost block job" in out
    assert time.monotonic() - started < 200
    assert our_jobs(big.env) == []


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
