"""The broker config of a block: Slurm's allocation read right, and a real Flux instance started with it has
exactly those cores (not the machine's), and gives an exclusive job whole nodes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.flux import allocation, instance
from workflows.settings import PROJECT

from ...needs import require


def test_host_lists_expand_in_slurm_order_keeping_zero_padding():
    assert allocation.hosts("n[1-3,7],gpu05,m[08-10]") == ["n1", "n2", "n3", "n7", "gpu05", "m08", "m09", "m10"]
    assert allocation.hosts("r[1-2]-n[1-2]") == ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]
    assert allocation.hosts("single") == ["single"]


@pytest.mark.parametrize("bad, word", [("n[1-3", "unbalanced"), ("n[3-1]", "bad range '3-1'"), ("n[a]", "bad range"),
                                       ("n1,,n2", "empty name")])
def test_a_bad_host_list_is_one_line_naming_it(bad, word):
    with pytest.raises(allocation.AllocationError, match=word):
        allocation.hosts(bad)


def test_cpu_counts_expand_and_must_match_the_nodes():
    assert allocation.cpus_per_node("2(x3),1", 4) == [2, 2, 2, 1]
    assert allocation.cpus_per_node("16", 1) == [16]
    with pytest.raises(allocation.AllocationError, match="counts 2 nodes, the node list 3"):
        allocation.cpus_per_node("1(x2)", 3)
    with pytest.raises(allocation.AllocationError, match="bad CPU count 'x'"):
        allocation.cpus_per_node("x", 1)


def test_the_config_gives_each_node_its_slurm_cpus_in_node_order():
    env = {"SLURM_JOB_NODELIST": "n[1-4]", "SLURM_JOB_CPUS_PER_NODE": "2(x2),1,2", "SLURM_JOB_ID": "42"}
    text = allocation.from_environment(env)
    assert text.splitlines()[:3] == ["# The CPUs Slurm allocated to job 42: one Flux core each "
                                     "(workflows.flux.allocation)", "[resource]", "noverify = true"]
    entries = [line for line in text.splitlines() if line.startswith(("hosts", "cores"))]
    assert entries == ['hosts = "n1,n2"', 'cores = "0-1"', 'hosts = "n3"', 'cores = "0"', 'hosts = "n4"',
                       'cores = "0-1"']
    assert "[[resource.config]]" not in allocation.from_environment({})  # outside Slurm: Flux discovers
    with pytest.raises(allocation.AllocationError, match="both be set, or neither"):
        allocation.from_environment({"SLURM_JOB_NODELIST": "n1"})


def test_the_command_writes_the_file_or_says_why_not_in_one_line(tmp_path):
    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        return subprocess.run([sys.executable, "-m", "workflows.flux.allocation", *args], cwd=PROJECT,
                              env={**clean, **env}, capture_output=True, text=True, timeout=60)

    done = run(str(tmp_path / "d" / "r.toml"), SLURM_JOB_NODELIST="a[1-2]", SLURM_JOB_CPUS_PER_NODE="3(x2)")
    assert done.returncode == 0 and 'hosts = "a1,a2"' in (tmp_path / "d" / "r.toml").read_text()
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["r.toml"]  # no temporary left
    bad = run(str(tmp_path / "x.toml"), SLURM_JOB_NODELIST="a[1-2]", SLURM_JOB_CPUS_PER_NODE="1")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "counts 1 nodes" in bad.stderr
    assert not (tmp_path / "x.toml").exists()
    assert run("--help").returncode == 0 and run().returncode == 2


def flux_start(config: Path, size: int, script: str) -> str:
    flux = instance.flux_command()
    assert flux
    proc = subprocess.run([flux, "start", "-c", str(config), f"--test-size={size}", "sh", "-c", script],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.flux
def test_a_flux_instance_started_with_it_has_the_slurm_cpus_not_the_machine_s_cores(tmp_path):
    require(instance.missing(bindings=False))
    host = socket.gethostname()
    config = tmp_path / "r.toml"
    config.write_text(allocation.from_environment({"SLURM_JOB_NODELIST": host, "SLURM_JOB_CPUS_PER_NODE": "1"}))
    assert (os.cpu_count() or 1) > 1  # this machine has more cores than the allocation gives
    out = flux_start(config, 1, "flux resource list -s all -no '{nnodes} {ncores} {nodelist}'")
    assert out.split() == ["1", "1", host]


@pytest.mark.flux
def test_exclusive_jobs_get_whole_nodes_where_others_would_share_one(tmp_path):
    """Two one-core jobs on two 2-core nodes: a core each, or with --exclusive a whole node (both cores) each."""
    require(instance.missing(bindings=False))
    config = tmp_path / "r.toml"
    config.write_text(allocation.resource_config(["fake0", "fake1"], [2, 2]))
    script = ("for x in '' --exclusive; do flux submit --cc=1-2 --wait-event=start -N1 -n1 $x sleep 30 >/dev/null; "
              "flux jobs -f running,pending -no '{nodelist} {ncores}'; flux cancel --all >/dev/null 2>&1; "
              "flux queue drain; echo --; done")
    shared, exclusive, _ = flux_start(config, 2, script).split("--\n")
    assert shared.split()[1::2] == ["1", "1"]  # a core each: another job could share its node
    assert sorted(exclusive.split()) == ["2", "2", "fake0", "fake1"]  # a node (both its cores) each
