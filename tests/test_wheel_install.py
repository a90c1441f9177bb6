"""A non-editable `pip install .` into a fresh venv: every console script works from site-packages.

The wheel is built once per session and installed, with its dependencies, into a venv under .state/ (the
local cluster's nodes see it: their /tmp is private). The scripts that need spack.yaml find the checkout
from the working directory (projectdir) and say so in one line outside one; the C source and the Lua file
come with the package.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .bundle.conftest import build_tree
from .conftest import PROJECT, STATE

ENTRY_POINTS = sorted(e.name for e in importlib.metadata.distribution("parsl-mpi-stack").entry_points)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    def script(self, name: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A console script of the venv, nothing of the checkout on PYTHONPATH."""
        environ = {k: v for k, v in (env or os.environ).items() if k not in ("PYTHONPATH", "PARSL_MPI_STACK_PROJECT")}
        environ["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{environ.get('PATH', '')}"
        return subprocess.run([str(self.venv / "bin" / name), *args], cwd=cwd, env=environ, capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture(scope="session")
def installed() -> Iterator[Installed]:
    work = STATE / "test-wheel" / uuid.uuid4().hex[:8]
    work.mkdir(parents=True)
    try:
        # From a copy of the files git knows (tracked, and new ones it does not ignore): setuptools' build/
        # in the checkout keeps modules that were moved or deleted since, and would put them in the wheel.
        source = work / "source"
        listed = subprocess.run(["git", "-C", str(PROJECT), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], check=True, capture_output=True).stdout.decode()
        for name in filter(None, listed.split("\0")):
            if (PROJECT / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(PROJECT / name, source / name)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(work / "dist"),
                        str(source)], check=True, capture_output=True, timeout=600)
        wheel = next((work / "dist").glob("parsl_mpi_stack-*.whl"))
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                       capture_output=True, timeout=900)
        yield Installed(wheel, venv)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_wheel_holds_the_packages_and_their_data(installed: Installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {"workflows/mpi_hello.c", "workflows/flux/shell_initrc.lua", "projectdir/__init__.py",
            "upstream/spack.py", "bundle/shipping/remote.py"} <= names
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)
    packages = ("workflows/", "bundle/", "localcluster/", "spackenv/", "upstream/", "projectdir/")
    tracked = subprocess.run(["git", "-C", str(PROJECT), "ls-files", *packages], check=True, capture_output=True,
                             text=True).stdout.split()
    assert {n for n in names if n.endswith(".py")} == {n for n in tracked if n.endswith(".py")}  # nothing stale
    code = "import workflows.settings as w, workflows.flux.instance as f; print(w.SOURCE.is_file(), f.INITRC.is_file())"
    out = subprocess.run([str(installed.venv / "bin" / "python"), "-c", code], cwd="/", capture_output=True, text=True,
                         check=True).stdout
    assert out == "True True\n"


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_console_script_answers_help_outside_a_checkout(installed: Installed, name: str, tmp_path: Path):
    proc = installed.script(name, "--help", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: "), proc.stdout + proc.stderr


def test_upstream_status_finds_the_checkout_from_the_working_directory(installed: Installed, tmp_path: Path):
    inside = installed.script("parsl-mpi-upstream", "status", cwd=PROJECT / "docs")
    assert inside.returncode == 0 and inside.stdout.startswith("prefix "), inside.stderr
    assert {line.split()[0] for line in inside.stdout.splitlines()} == {"prefix", "flux", "spack"}
    outside = installed.script("parsl-mpi-upstream", "status", cwd=tmp_path)
    said = "parsl-mpi-upstream: no parsl-mpi-stack checkout here"  # a refusal: run it in one (exit 2)
    assert outside.returncode == 2 and outside.stderr.startswith(said), outside.stderr
    assert outside.stderr.count("\n") == 1


def test_environment_and_bundle_pack_verify(installed: Installed, tmp_path: Path):
    loads = installed.script("parsl-mpi-environment", cwd=tmp_path)
    assert loads.stdout == "spack load openmpi\nspack load flux-sched\nspack load miniconda3\n", loads.stderr
    root = build_tree(tmp_path / "root")
    packed = installed.script("parsl-mpi-bundle", "pack", str(root), "-o", f"{tmp_path}/", "--json", "-q",
                              cwd=tmp_path)
    assert packed.returncode == 0, packed.stderr
    verified = installed.script("parsl-mpi-bundle", "verify", json.loads(packed.stdout)["bundle"], cwd=tmp_path)
    assert verified.returncode == 0 and "OK" in verified.stdout, verified.stderr


@pytest.mark.cluster
def test_a_workflow_run_on_the_local_cluster(installed: Installed, slurm_cluster, shared_dir: Path):
    proc = installed.script("parsl-mpi-workflows", "run", "htex", "--no-spack", "--repeats", "2", "--run-dir",
                            str(shared_dir), "--json", cwd=shared_dir, env=slurm_cluster.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    data = json.loads((shared_dir / "result.json").read_text())
    assert data["verified"] and len(data["runs"]) == 2
    assert data["parameters"]["venv"] == str(installed.venv)  # the workers ran the installed code's venv


def test_the_pre_flight_refuses_a_venv_the_nodes_cannot_see_before_submitting(installed: Installed):
    """A venv under /tmp (each node's own): one line, exit 2, before Slurm is asked anything (no cluster here)."""
    venv = Path("/tmp") / f"pms-preflight-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = next((installed.venv / "lib").glob("python3*/site-packages"))
        (next((venv / "lib").glob("python3*")) / "site-packages" / "installed.pth").write_text(f"{site}\n")
        proc = subprocess.run([str(venv / "bin" / "python"), "-m", "workflows", "run", "htex", "--no-spack"],
                              cwd=STATE, capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")})
    finally:
        shutil.rmtree(venv, ignore_errors=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (f"python -m workflows: the workers' Python {venv} is under /tmp, which each compute node "
                           "has to itself: they could not start it; use a Python (or venv) on a shared filesystem\n")
