"""The user's own MPI program on the local cluster: run.py --command (with and without the probe) and the
public Python API's example, each checked against what the program itself says about where it ran."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.placement import HELLO
from workflows.settings import SOURCE

from ..conftest import PROJECT
from .test_run import our_jobs, run

pytestmark = pytest.mark.cluster
EXAMPLE = PROJECT / "examples" / "own_mpi_program.py"


@pytest.fixture
def hello_binary(shared_dir: Path) -> Path:
    """The hello world compiled where the nodes see it: a program that says itself where each rank ran."""
    binary = shared_dir / "app" / "mpi_hello"
    binary.parent.mkdir()
    subprocess.run(["mpicc", "-O2", "-o", str(binary), str(SOURCE)], check=True)
    return binary


def hello_lines(path: Path) -> list[tuple[str, int, int]]:
    """(host, rank, cpu) of each line the hello world printed."""
    return sorted((m[1], int(m[2]), int(m[4])) for line in path.read_text().splitlines() if (m := HELLO.match(line)))


def assert_places_agree_with_the_program(run_dir: Path, r: dict) -> None:
    """The wrapper's record of each rank (rank, node, the one CPU it was bound to) is what MPI itself reports."""
    recorded = sorted((k["host"], k["rank"], c) for k in r["ranks"] for c in k["cpus"])
    assert all(len(k["cpus"]) == 1 for k in r["ranks"]), r["ranks"]
    assert recorded == hello_lines(run_dir / r["output"])


@pytest.mark.parametrize("args", [["htex"], ["flux"], ["mpi", "--launcher", "flux"]], ids=" ".join)
def test_command_runs_the_users_program_with_the_variants_launch_line(slurm_cluster, shared_dir, hello_binary,
                                                                      request, args):
    if "flux" in args:
        request.getfixturevalue("flux_ready")
    run_dir = shared_dir / "r"
    proc = run(slurm_cluster.env, *args, "--no-spack", "--repeats", "2", "--command", f"{hello_binary} extra-arg",
               "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((run_dir / "result.json").read_text())
    assert data["verified"] and data["problems"] == [] and data["probe_runs"] == []
    assert data["parameters"]["command"] == [str(hello_binary), "extra-arg"]
    assert not (run_dir / "mpi_hello").exists()  # no probe: the hello world was not compiled
    assert [r["index"] for r in data["runs"]] == [0, 1]
    for r in data["runs"]:
        assert r["exit_status"] == 0 and len(r["nodes"]) == 2 and len(r["ranks"]) == 4
        assert r["cores"] == {n: [0, 1] for n in r["nodes"]}
        assert_places_agree_with_the_program(run_dir, r)
        assert (run_dir / r["errors"]).is_file()
    assert (run_dir / "placement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "every run exited 0" in proc.stdout and "outputs/command-0.out" in proc.stdout
    assert our_jobs(slurm_cluster.env) == []


def test_the_probe_verifies_placement_first_then_the_command_runs(slurm_cluster, shared_dir, hello_binary):
    run_dir = shared_dir / "r"
    proc = run(slurm_cluster.env, "mpi", "--no-spack", "--repeats", "2", "--probe", "--command", str(hello_binary),
               "--run-dir", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((run_dir / "result.json").read_text())
    assert data["verified"], data["problems"]
    assert len(data["probe_runs"]) == 2 and all(len(r["ranks"]) == 4 for r in data["probe_runs"])
    probe_end = max(r["end"] for r in data["probe_runs"])
    assert all(r["exit_status"] == 0 and r["start"] > probe_end for r in data["runs"])
    for r in data["runs"]:
        assert_places_agree_with_the_program(run_dir, r)
    assert our_jobs(slurm_cluster.env) == []


def test_a_failing_program_exits_1_with_each_runs_status_and_output(slurm_cluster, shared_dir):
    script = shared_dir / "fails.sh"
    script.write_text("#!/bin/sh\necho 'my program ran' >&2\nexit 3\n")
    script.chmod(0o755)
    run_dir = shared_dir / "r"
    proc = run(slurm_cluster.env, "htex", "--no-spack", "--repeats", "2", "--retries", "0",
               "--command", str(script), "--run-dir", str(run_dir))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads((run_dir / "result.json").read_text())
    assert not data["verified"] and data["failed_runs"] == [0, 1]
    for r in data["runs"]:
        assert r["exit_status"] not in (0, None) and len(r["nodes"]) == 2  # where it ran is known all the same
        assert "my program ran" in (run_dir / r["errors"]).read_text()
        assert f"run {r['index']} exited {r['exit_status']} (see {r['errors']})" in data["problems"]
    assert "NOT every run exited 0" in proc.stdout
    assert our_jobs(slurm_cluster.env) == []


def test_the_examples_program_runs_twice_through_the_public_api(slurm_cluster, shared_dir, hello_binary):
    run_dir = shared_dir / "r"
    proc = subprocess.run([sys.executable, str(EXAMPLE), "htex", "--no-spack", "--run-dir", str(run_dir), "--",
                           str(hello_binary)], env=slurm_cluster.env, capture_output=True, text=True, timeout=300,
                          cwd=shared_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["run 0", "run 1"]
    for i, line in enumerate(lines):
        m = re.fullmatch(r"run \d: exit 0, nodes (\S+), ranks \(rank@node:cpus\) (.+), output (\S+)", line)
        assert m, line
        said = sorted((h, int(k), int(c)) for k, h, c in re.findall(r"(\d+)@(\S+?):(\d+)", m[2]))
        assert len(m[1].split(",")) == 2 and said == hello_lines(Path(m[3]))
        assert Path(m[3]) == run_dir / "example" / f"run-{i}.out"
    assert our_jobs(slurm_cluster.env) == []


@pytest.mark.parametrize("args, word", [
    (["htex", "--probe"], "--probe needs --command"),
    (["htex", "--command", ""], "--command is empty"),
    (["htex", "--command", "./app 'unclosed"], "No closing quotation"),
    (["htex", "--command", "./no-such-program -x"], "the program ./no-such-program is not a file"),
    (["htex", "--command", "true", "--source", "x.c"], "--source is the hello world's"),
])
def test_a_bad_command_is_one_line_before_slurm_is_contacted(args, word):
    env = {**os.environ, "SLURM_CONF": "/nonexistent/slurm.conf"}
    proc = run(env, *args, "--no-spack")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert word in proc.stderr and "Slurm" not in proc.stderr
