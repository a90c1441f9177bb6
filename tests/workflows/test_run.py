"""run.py end to end on the local cluster: every variant verified, nothing left in squeue."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workflows import variants

from ..conftest import PROJECT

pytestmark = pytest.mark.cluster
RUN = [sys.executable, str(PROJECT / "workflows" / "run.py")]
PROG = f"{Path(sys.executable).name} {RUN[1]}"  # what its lines start with: the command typed (projectdir/cli.py)


def our_jobs(env) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %k"], env=env, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "parslmpi-" in line]


def run(env, *args, timeout=300):
    return subprocess.run([*RUN, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=PROJECT)


@pytest.mark.parametrize("choice", variants.choices(), ids=lambda c: c.label)
def test_variant_verifies_with_runs_in_parallel_on_disjoint_nodes(slurm_cluster, shared_dir, request, choice):
    variant, args = choice.variant, choice.args
    if "flux" in (choice.variant, choice.rank_launcher):
        request.getfixturevalue("flux_ready")
    proc = run(slurm_cluster.env, *args, "--no-spack", "--repeats", "4", "--nodes-per-run", "2",
               "--run-dir", str(shared_dir), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == str(shared_dir / "result.json")
    data = json.loads((shared_dir / "result.json").read_text())
    assert data["verified"] and data["problems"] == []
    assert len(data["runs"]) == 4
    for r in data["runs"]:
        assert len(r["nodes"]) == 2 and len(r["ranks"]) == 4
        assert sorted((k["host"], k["cpu"]) for k in r["ranks"]) == sorted((n, c) for n in r["nodes"] for c in (0, 1))
        assert (shared_dir / r["output"]).is_file()
    assert data["max_concurrent_runs"] == 2  # two runs at a time on 4 nodes: in parallel, not in turn
    assert (shared_dir / "runinfo").is_dir()
    assert (shared_dir / "placement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert our_jobs(slurm_cluster.env) == []
    if variant == "static":
        counts = [n for _, n in data["block_samples"]]
        assert counts and set(counts[counts.index(4):]) == {4}


def test_mpi_variant_with_mpich(slurm_cluster, shared_dir):
    if shutil.which("mpicc.mpich") is None:
        pytest.skip("MPICH is not installed (Debian package mpich)")
    proc = run(slurm_cluster.env, "mpi", "--no-spack", "--mpi", "mpich", "--run-dir", str(shared_dir), "--json")
    data = json.loads((shared_dir / "result.json").read_text())
    assert proc.returncode == 0 and data["verified"], data["problems"]


@pytest.mark.parametrize("args", [["flux"], ["mpi", "--launcher", "flux"]])
def test_without_flux_on_path_the_flux_runs_say_how_to_get_it_and_contact_nothing(args):
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "flux").exists())
    env = {**os.environ, "PATH": path, "SLURM_CONF": "/nonexistent/slurm.conf"}  # nothing may be contacted
    proc = run(env, *args, "--no-spack")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "flux not found on PATH" in proc.stderr and "scripts/setup.sh" in proc.stderr


def test_flux_bindings_that_do_not_import_are_named_before_anything_is_submitted(flux_ready, tmp_path):
    # Flux's bindings need cffi's backend: one that fails to import stands in for a Python they were not built for
    (tmp_path / "_cffi_backend.py").write_text("raise ImportError('not the real cffi backend')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "SLURM_CONF": "/nonexistent/slurm.conf"}
    proc = run(env, "flux", "--no-spack")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Python bindings" in proc.stderr and "not the real cffi backend" in proc.stderr


@pytest.mark.parametrize("args, word", [
    (["htex", "--nodes-per-run", "5"], "more than the 4 nodes"),
    (["htex", "--repeats", "0"], "--repeats must be at least 1"),
    (["htex", "--nodes-per-run", "-1"], "--nodes-per-run must be at least 1"),
    (["dask"], "invalid choice"),
    (["htex", "--load", "miniconda3", "--load", "openmpi"], "must be loaded last"),
    (["htex", "--no-spack", "--run-dir", "runs/a b"], "spaces and shell characters are not allowed"),
    (["htex", "--no-spack", "--run-dir", "/tmp/r"], "each compute node has to itself"),
    (["htex", "--launcher", "flux"], "the htex variant launches with mpirun only"),
])
def test_bad_input_is_one_line_and_submits_nothing(slurm_cluster, args, word):
    proc = run(slurm_cluster.env, *args)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert word in proc.stderr
    assert our_jobs(slurm_cluster.env) == []


def test_unreachable_slurm_is_one_line(slurm_cluster, shared_dir):
    # a configuration Slurm cannot read (a missing one sends Slurm to look for a controller in DNS, which may hang)
    (shared_dir / "broken.conf").write_text("this is not a slurm.conf\n")
    env = {**slurm_cluster.env, "SLURM_CONF": str(shared_dir / "broken.conf")}
    proc = run(env, "htex", "--no-spack", "--run-dir", str(shared_dir / "r"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"{PROG}: Slurm unreachable: sinfo: "), proc.stderr
    assert "local-cluster.sh up" in proc.stderr  # says what is missing and how to get it
    assert len(proc.stderr.strip().splitlines()) == 1 and not (shared_dir / "r").exists()


@pytest.mark.parametrize("args, word", [(["htex", "--repeats", "0"], "--repeats must be at least 1"),
                                        (["mpi", "--mpi", "intel"], "--mpi must be one of")])
def test_bad_arguments_are_refused_before_slurm_is_contacted(args, word):
    env = {**os.environ, "SLURM_CONF": "/nonexistent/slurm.conf"}
    proc = run(env, *args, "--no-spack")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert word in proc.stderr and "Slurm" not in proc.stderr


def test_sigint_during_a_run_leaves_no_job(slurm_cluster, shared_dir):
    proc = subprocess.Popen([*RUN, "static", "--no-spack", "--run-dir", str(shared_dir)], env=slurm_cluster.env,
                            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not our_jobs(slurm_cluster.env) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert our_jobs(slurm_cluster.env), "the run submitted no block"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert our_jobs(slurm_cluster.env) == []


def test_clean_removes_run_directories_and_nothing_else(tmp_path):
    runs = tmp_path / "runs"
    (runs / "htex-1").mkdir(parents=True)
    (runs / "htex-1" / ".workflows-run").touch()
    (runs / "mine").mkdir()
    dry = subprocess.run([*RUN, "clean", "--dry-run"], cwd=tmp_path, capture_output=True, text=True)
    assert "would remove runs/htex-1" in dry.stdout and (runs / "htex-1").exists()
    subprocess.run([*RUN, "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert not (runs / "htex-1").exists() and (runs / "mine").exists()


def test_a_hung_run_is_ended_at_its_timeout_and_reported(slurm_cluster, shared_dir):
    hang = shared_dir / "hang.c"
    hang.write_text("#include <mpi.h>\n#include <unistd.h>\n"
                    "int main(int c, char **v) { MPI_Init(&c, &v); for (;;) sleep(1); }\n")
    started = time.monotonic()
    proc = run(slurm_cluster.env, "mpi", "--no-spack", "--source", str(hang), "--run-timeout", "3", "--retries", "0",
               "--repeats", "2", "--run-dir", str(shared_dir / "r"))
    assert proc.returncode == 1, proc.stderr
    assert "run 0 timed out after 3 s (--run-timeout)" in proc.stdout
    assert "run 1 timed out after 3 s (--run-timeout)" in proc.stdout
    assert time.monotonic() - started < 60
    assert our_jobs(slurm_cluster.env) == []

