"""The local cluster for real: daemons, namespaces, MPI across nodes, a clean teardown."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import cluster, network
from localcluster.spec import client_env

from ..conftest import PROJECT, spec_for

pytestmark = pytest.mark.cluster
SCRIPT = str(PROJECT / "scripts" / "local-cluster.sh")
HELLO = re.compile(r"^Hello world from processor (\S+), rank (\d+) out of (\d+) processors, cpu (\d+)$")


def sh(cmd, env, **kw) -> str:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=120, **kw).stdout


@pytest.fixture(scope="module")
def hello(slurm_cluster) -> Iterator[Path]:
    out = PROJECT / ".state" / "test-shared" / f"hello-{slurm_cluster.spec.bridge}"  # the run's own
    out.parent.mkdir(parents=True, exist_ok=True)
    sh(["mpicc", "-o", str(out), str(PROJECT / "workflows" / "mpi_hello.c")], slurm_cluster.env)
    yield out
    out.unlink(missing_ok=True)


def ranks(text: str) -> list[tuple[str, int, int, int]]:
    found = [HELLO.match(line) for line in text.splitlines() if line.startswith("Hello")]
    return [(m[1], int(m[2]), int(m[3]), int(m[4])) for m in found if m]


def assert_8_ranks_2_per_node(text: str) -> None:
    got = ranks(text)
    assert sorted(r for _, r, _, _ in got) == list(range(8)), text
    assert {size for _, _, size, _ in got} == {8}
    per_node = collections.Counter(host for host, _, _, _ in got)
    assert sorted(per_node) == ["n1", "n2", "n3", "n4"] and set(per_node.values()) == {2}


def test_sinfo_shows_every_node_idle(slurm_cluster):
    out = sh(["sinfo", "-h", "-N", "-o", "%N %T %c"], slurm_cluster.env)
    assert sorted(out.split("\n")[:-1]) == [f"n{i} idle 2" for i in range(1, 5)]


def test_srun_reaches_four_distinct_hostnames(slurm_cluster):
    out = sh(["srun", "-N4", "hostname"], slurm_cluster.env)
    assert sorted(out.split()) == ["n1", "n2", "n3", "n4"]


def test_each_node_has_its_own_address(slurm_cluster):
    out = sh(["srun", "-N4", "--ntasks-per-node=1", "sh", "-c", "echo $(hostname) $(ip -4 -o addr show eth0)"],
             slurm_cluster.env)
    addrs = dict((line.split()[0], line.split()[4]) for line in out.splitlines())
    spec = slurm_cluster.spec
    assert addrs == {f"n{i}": f"{spec.node_address(i)}/{spec.prefixlen}" for i in range(1, 5)}


def test_mpi_with_srun_pmix(slurm_cluster, hello):
    assert_8_ranks_2_per_node(sh(["srun", "-N4", "-n8", "--mpi=pmix", str(hello)], slurm_cluster.env))


def test_mpirun_inside_salloc(slurm_cluster, hello):
    assert_8_ranks_2_per_node(sh(["salloc", "-N4", "-n8", "mpirun", "--bind-to", "core", str(hello)],
                                 slurm_cluster.env))


def test_mpirun_inside_sbatch(slurm_cluster, hello, shared_dir):
    out = shared_dir / "out.txt"
    script = shared_dir / "job.sh"
    script.write_text(f"#!/bin/bash\nmpirun --bind-to core {hello}\n")
    sh(["sbatch", "-W", "-N4", "-n8", "-o", str(out), str(script)], slurm_cluster.env)
    text = out.read_text()
    assert_8_ranks_2_per_node(text)
    per_node_cpus = collections.defaultdict(set)
    for host, _, _, cpu in ranks(text):
        per_node_cpus[host].add(cpu)
    assert all(len(cpus) == 2 for cpus in per_node_cpus.values()), text


def test_up_twice_down_twice_leaves_nothing(tmp_path):
    spec = spec_for("test-lifecycle", nodes=2)
    env = {**os.environ, **client_env(spec)}
    args = ["--root", str(spec.root), "--nodes", "2", "--bridge", spec.bridge, "--subnet", spec.subnet,
            "--prefix", spec.prefix, "--ctld-port", str(spec.ctld_port), "--slurmd-port", str(spec.slurmd_port)]
    try:
        first = sh([SCRIPT, "up", "-q", *args], env)
        assert first.startswith("up: 2 nodes x 2 CPUs")
        assert sh([SCRIPT, "up", "-q", *args], env).startswith("already up")
        assert sorted(sh(["srun", "-N2", "hostname"], env).split()) == ["n1", "n2"]
        assert "n2      idle" in sh([SCRIPT, "status", "--root", str(spec.root)], env)
        # A job still running when the cluster goes down is cancelled, its processes killed.
        subprocess.run(["sbatch", "-N2", "--wrap", "srun sleep 300"], env=env, check=True, capture_output=True)
    finally:
        sh([SCRIPT, "down", "-q", "--root", str(spec.root)], env)
    assert cluster.leftovers(spec) == []
    sh([SCRIPT, "down", "-q", *args], env)
    assert cluster.leftovers(spec) == []
    status = subprocess.run([SCRIPT, "status", *args], env=env, capture_output=True, text=True)
    assert status.returncode == 1 and "not running" in status.stdout


def test_up_clears_the_leftovers_of_a_crashed_run():
    spec = spec_for("test-crash", nodes=1)
    try:
        cluster.up(spec)
        for pid in cluster.daemon_pids(spec).values():  # a crash: every daemon killed, state left behind
            os.kill(pid, 9)
        assert cluster.leftovers(spec)
        assert cluster.up(spec).startswith("up: 1 nodes")
    finally:
        cluster.down(spec)
    assert cluster.leftovers(spec) == []


@pytest.mark.parametrize("args, word", [
    (["up", "--nodes", "0"], "--nodes"), (["up", "--cpus", "x"], "--cpus"), (["restart"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_change_nothing(slurm_cluster, args, word):
    root = PROJECT / ".state" / "test-bad-args"
    proc = subprocess.run([SCRIPT, *args, "--root", str(root)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and word in proc.stderr, proc.stderr
    assert not root.exists()
    assert cluster.healthy(slurm_cluster.spec)


def test_a_port_in_use_is_a_one_line_reason_and_nothing_is_left():
    import socket

    spec = spec_for("test-port", nodes=1)
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", spec.ctld_port))
        busy.listen()
        proc = subprocess.run([SCRIPT, "up", "-q", "--root", str(spec.root), "--nodes", "1", "--bridge", spec.bridge,
                               "--subnet", spec.subnet, "--prefix", spec.prefix, "--ctld-port", str(spec.ctld_port),
                               "--slurmd-port", str(spec.slurmd_port)], capture_output=True, text=True)
    assert proc.returncode == 1
    reason = f"{SCRIPT}: port {spec.ctld_port} in use (pick another with --ctld-port)"  # the command typed
    assert proc.stderr.strip().splitlines() == [reason]
    assert cluster.leftovers(spec) == []


def test_a_controller_restart_keeps_running_jobs(slurm_cluster, shared_dir):
    out = shared_dir / "job.out"
    job = sh(["sbatch", "--parsable", "-N1", "-o", str(out), "--wrap", "sleep 2; echo survived"], slurm_cluster.env)
    assert cluster.restart_controller(slurm_cluster.spec).startswith("slurmctld restarted")
    assert job.strip() in sh(["squeue", "-h", "-o", "%i"], slurm_cluster.env).split()
    deadline = time.monotonic() + 30
    while "survived" not in (out.read_text() if out.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert out.read_text().strip() == "survived"
    assert cluster.healthy(slurm_cluster.spec)


def test_a_killed_node_loses_every_process_and_revives_idle(slurm_cluster):
    spec = slurm_cluster.spec
    assert cluster.kill_node(spec, "n2").startswith("n2: killed")
    assert network.namespace_pids(spec.netns("n2")) == [] and cluster.daemon_pids(spec)["slurmd@n2"] is None
    assert cluster.revive_node(spec, "n2") == "n2: idle again"
    assert cluster.healthy(spec)
    with pytest.raises(cluster.ClusterError, match="no node 'n9'"):
        cluster.kill_node(spec, "n9")
