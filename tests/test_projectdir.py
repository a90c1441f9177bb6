"""The project locator (projectdir), the tools' own venv (projectdir/toolsvenv.py) and the run's pre-flight of
what the nodes must see (workflows/settings.py)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import projectdir
from projectdir import toolsvenv
from workflows.settings import Settings, python_prefixes, unseen_by_nodes

from .conftest import PROJECT

PYENV = Path.home() / ".pyenv" / "versions"


def test_the_checkout_is_found_from_the_working_directory_up_else_the_source_tree(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(projectdir.ENV, raising=False)
    other = tmp_path / "clone"
    other.mkdir()
    shutil.copy(PROJECT / "spack.yaml", other)
    shutil.copy(PROJECT / "pyproject.toml", other)
    (other / "docs").mkdir()
    assert projectdir.find(cwd=other / "docs") == other
    assert projectdir.find(cwd=tmp_path) == PROJECT  # not a checkout: the source tree this code came from
    (other / "pyproject.toml").write_text('[project]\nname = "another"\n')
    assert projectdir.find(cwd=other / "docs") == PROJECT  # another project's spack.yaml is not this one's


def test_a_named_folder_that_is_no_checkout_is_a_one_line_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(projectdir.ENV, str(tmp_path))
    with pytest.raises(projectdir.NotFound, match=rf"^\${projectdir.ENV}={tmp_path} is not a parsl-mpi-stack"):
        projectdir.find()
    monkeypatch.setenv(projectdir.ENV, str(PROJECT))
    assert projectdir.required(cwd=tmp_path) == PROJECT


def test_tools_venv_maps_every_console_script_as_pyproject_does():
    scripts = toolsvenv.console_scripts((PROJECT / "pyproject.toml").read_text())
    installed = {e.name: e.value for e in importlib.metadata.distribution("parsl-mpi-stack").entry_points}
    assert scripts == installed


def test_tools_venv_is_keyed_by_interpreter_and_requirements(tmp_path: Path):
    base = toolsvenv.venv_folder(tmp_path, "/usr/bin/python3.11", "3.11.2 (main)", b"PyYAML==6.0.2\n")
    assert base.parent == tmp_path / "parsl-mpi-stack" / "tools-venv" and base.name.startswith("py3.11-")
    assert toolsvenv.venv_folder(tmp_path, "/usr/bin/python3.11", "3.11.2 (main)", b"PyYAML==6.0.2\n") == base
    assert toolsvenv.venv_folder(tmp_path, "/opt/py/bin/python3.11", "3.11.2 (main)", b"PyYAML==6.0.2\n") != base
    assert toolsvenv.venv_folder(tmp_path, "/usr/bin/python3.11", "3.11.2 (main)", b"PyYAML==6.0.3\n") != base


def test_the_launch_runs_the_checkout_s_function_whatever_the_working_directory(tmp_path: Path):
    command = toolsvenv.launch_command(Path(sys.executable), "workflows.environment:main", PROJECT,
                                       "parsl-mpi-environment", ["--no-spack", "--venv", "/v"])
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert (proc.returncode, proc.stdout) == (0, ". /v/bin/activate\n"), proc.stderr


@pytest.mark.skipif(not (PYENV / "3.6.15").is_dir(), reason="pyenv's Python 3.6 is not installed here")
def test_a_python_older_than_3_9_is_refused_in_one_line():
    python = next((PYENV / "3.6.15" / "bin").glob("python3.6"))
    proc = subprocess.run([str(python), str(PROJECT / "projectdir" / "toolsvenv.py"), "parsl-mpi-bundle"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == (f"console-script: {python} is Python 3.6.15; the project's tools need 3.9 or newer "
                           "(set PYTHON to one)\n")


def test_pip_failing_is_one_line_and_leaves_no_half_venv(tmp_path: Path):
    checkout = tmp_path / "checkout"
    (checkout / "env").mkdir(parents=True)
    shutil.copy(PROJECT / "pyproject.toml", checkout)
    (checkout / toolsvenv.REQUIREMENTS).write_text("parsl-mpi-stack-no-such-package==0.0\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    shutil.copytree(PROJECT / "projectdir", checkout / "projectdir")
    proc = subprocess.run(["/usr/bin/python3", str(checkout / "projectdir" / "toolsvenv.py"), "parsl-mpi-bundle"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    said, error = proc.stderr.splitlines()
    assert said.startswith("console-script: parsl-mpi-bundle is not in .venv or on PATH: making, once, a venv")
    assert error.startswith("console-script: pip could not install env/tools-requirements.txt into ")
    assert "parsl-mpi-stack-no-such-package" in error
    assert [p.name for p in (tmp_path / "cache" / "parsl-mpi-stack" / "tools-venv").iterdir()
            if not p.name.endswith(".lock")] == []


def settings(run_dir: str, **kw) -> Settings:
    return dataclasses.replace(Settings(variant="htex", run_dir=PROJECT / "runs" / "x"), run_dir=Path(run_dir), **kw)


def test_the_pre_flight_names_the_first_folder_the_nodes_cannot_see(tmp_path: Path):
    shared_run = str(PROJECT / "runs" / "x")
    assert unseen_by_nodes(settings(shared_run), [Path("/usr")], PROJECT, []) is None
    venv = unseen_by_nodes(settings(shared_run), [Path("/tmp/v")], PROJECT, [])
    assert venv is not None and venv.startswith("the workers' Python /tmp/v is under /tmp, which each compute node")
    code = unseen_by_nodes(settings(shared_run), [Path("/usr")], Path("/dev/shm/checkout"), [])
    assert code is not None and code.startswith("the project's code /dev/shm/checkout is under /dev/shm")
    assert "workflows.launch" in code
    assert unseen_by_nodes(settings(shared_run), [Path("/tmp/ci/v")], Path("/tmp/ci/p"), [Path("/tmp/ci")]) is None
    link = tmp_path / "looks-shared"
    link.symlink_to("/var/tmp")  # a link into a node-local folder is node-local
    refused = unseen_by_nodes(settings(shared_run), [link / "venv"], PROJECT, [])
    assert refused is not None and "is under /var/tmp" in refused


def test_the_workers_python_is_the_venv_and_its_base_or_none_with_spack_loads():
    assert python_prefixes(settings(str(PROJECT / "r"), venv="/shared/v")) == [Path("/shared/v"), Path(sys.base_prefix)]
    assert python_prefixes(settings(str(PROJECT / "r"), use_spack=True)) == []
    assert python_prefixes(settings(str(PROJECT / "r"))) == [Path(sys.prefix)]
