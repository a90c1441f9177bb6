"""The Flux variants place runs as Slurm allocated, on a cluster whose nodes have fewer Slurm CPUs than the
machine has cores (hwloc sees them all in every node): one run per node at a time, every run verified.

Without the allocation's broker config Flux counted 2 cores per node here and put two 1-CPU runs on one
node at once (the placement check failed). With it each node has one Flux core, and runs are exclusive.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import Cluster, running, spec_for
from .test_run import our_jobs, run

pytestmark = pytest.mark.cluster
NODES = 4
REPEATS = 8


@pytest.fixture(scope="module")
def one_cpu_nodes() -> Iterator[Cluster]:
    """4 nodes x 1 CPU in Slurm's view, each seeing the machine's cores."""
    with running(spec_for("one-cpu-nodes", nodes=NODES, cpus=1)) as up:
        yield up


def runs_at_once_per_node(data: dict) -> dict[str, int]:
    """The most runs one node held at the same time, per node (from the runs' own start/end stamps)."""
    most: dict[str, int] = {}
    for r in data["runs"]:
        for node in r["nodes"]:
            at_start = sum(1 for o in data["runs"] if node in o["nodes"] and o["start"] <= r["start"] < o["end"])
            most[node] = max(most.get(node, 0), at_start)
    return most


@pytest.mark.parametrize("args", [["flux"], ["mpi", "--launcher", "flux"]], ids=["flux", "mpi-flux"])
def test_flux_runs_one_run_per_one_cpu_node_at_a_time(one_cpu_nodes, shared_dir, flux_ready, args):
    assert (os.cpu_count() or 1) > 1, "the machine must have more cores than a node has Slurm CPUs"
    proc = run(one_cpu_nodes.env, *args, "--no-spack", "--repeats", str(REPEATS), "--nodes-per-run", "1",
               "--run-dir", str(shared_dir), timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((shared_dir / "result.json").read_text())
    assert data["verified"] and data["problems"] == [], data["problems"]
    assert len(data["runs"]) == REPEATS
    assert all(len(r["ranks"]) == 1 and r["ranks"][0]["cpu"] == 0 for r in data["runs"])  # one rank, its one CPU
    assert set(runs_at_once_per_node(data).values()) == {1}
    assert data["max_concurrent_runs"] > 1  # still in parallel, on different nodes
    assert our_jobs(one_cpu_nodes.env) == []
    configs = list(Path(shared_dir).rglob("resource-*.toml"))
    assert len(configs) == 1 and 'cores = "0"' in configs[0].read_text()
    hosts = next(line for line in configs[0].read_text().splitlines() if line.startswith("hosts"))
    assert hosts == f'hosts = "{",".join(one_cpu_nodes.spec.node_names)}"'  # the block: every node, in order
