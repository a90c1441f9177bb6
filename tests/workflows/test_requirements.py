"""What a run imports is what env/parsl-requirements.txt gives conda's base env (scripts/build-env.sh).

Two checks: a static one (every third-party module the run path imports, function-level imports included,
comes from a distribution the file installs) and a real one (a venv of the system Python holding exactly
that file, the checkout not installed, runs variants on the local cluster to the end, placement.png included).
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from ..conftest import PROJECT, STATE
from ..test_imports import guarded, imports, modules
from .test_run import our_jobs

REQUIREMENTS = PROJECT / "env" / "parsl-requirements.txt"
ENTRY = "workflows.cli"  # workflows/run.py only loads the package and calls workflows.cli.main
# Flux's Python bindings (`import flux`) come with Flux itself (Spack's flux-core, found through `flux env`),
# not from PyPI: the one third-party module the file does not have to provide.
FROM_FLUX = {"flux"}
SYSTEM_PYTHON = Path("/usr/bin/python3")  # the users' Python (Debian's), standing in for conda's


def normalized(name: str) -> str:
    """A distribution's name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def required(text: str) -> set[str]:
    """The distributions a requirements file names."""
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return {normalized(re.split(r"[\[=<>!~; ]", line)[0]) for line in lines if line}


def run_path(known: Mapping[str, Path]) -> set[str]:
    """The project modules a run reaches from workflows.cli: imported (anywhere in a function too), or started
    on a node as `python -m workflows.X` (workflows.launch)."""
    seen, todo = set(), [ENTRY]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        started = set(re.findall(r"-m (workflows(?:\.\w+)+)", known[name].read_text())) & known.keys()
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}  # run as imported
        todo += sorted(imports(name, known[name], dict(known), when_imported=True) | started | parents)
    return seen


def third_party(path: Path) -> set[str]:
    """The top-level modules a file imports at run time that are neither the standard library nor the project."""
    tree = ast.parse(path.read_text())
    skip = guarded(tree)
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"workflows", "projectdir", "__future__"}  # the project: its checkout


def unprovided(imported: Mapping[str, set[str]], provided: set[str],
               distributions: Mapping[str, list[str]]) -> list[str]:
    """One line per imported module no distribution in `provided` gives (by module: the files importing it)."""
    out = []
    for module, files in sorted(imported.items()):
        if module in FROM_FLUX:
            continue
        dists = {normalized(d) for d in distributions.get(module, [])}
        if not dists & provided:
            where = ", ".join(sorted(dists)) or "no installed distribution"
            out.append(f"{module} (imported by {', '.join(sorted(files))}; from {where}) is not in {REQUIREMENTS.name}")
    return out


def run_path_imports() -> dict[str, set[str]]:
    """Third-party module -> the run path's files importing it."""
    known = modules()
    found: dict[str, set[str]] = {}
    for name in run_path(known):
        for module in third_party(known[name]):
            found.setdefault(module, set()).add(str(known[name].relative_to(PROJECT)))
    return found


def test_the_run_path_is_what_a_run_really_loads():
    known = modules()
    reached = run_path(known)
    assert {"workflows.report", "workflows.submission", "workflows.launch", "workflows.flux.executor",
            "workflows.variants.flux", "workflows.command"} <= reached
    assert "workflows.bench" not in reached and "bundle" not in {m.split(".")[0] for m in reached}
    imported = run_path_imports()
    assert {"parsl", "matplotlib", "flux"} <= imported.keys()  # a function-level import counts (report.plot's)
    assert "workflows/report.py" in imported["matplotlib"]


def test_every_module_a_run_imports_comes_from_the_requirements_file():
    problems = unprovided(run_path_imports(), required(REQUIREMENTS.read_text()),
                          importlib.metadata.packages_distributions())
    assert problems == []


def test_the_check_names_a_module_the_file_leaves_out():
    without = required(REQUIREMENTS.read_text()) - {"matplotlib"}
    problems = unprovided(run_path_imports(), without, importlib.metadata.packages_distributions())
    assert len(problems) == 1
    assert problems[0].startswith("matplotlib (imported by workflows/report.py; from matplotlib)")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other clones' test runs may build the same venv at the same time
        yield


@pytest.fixture(scope="session")
def requirements_venv() -> Path:
    """A venv of the system Python holding exactly env/parsl-requirements.txt (conda's base as build-env.sh
    makes it), kept under .state/ by the file's digest: built once per version of the file."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"{SYSTEM_PYTHON} is not installed")
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    venv = STATE / f"requirements-venv-{digest}"
    STATE.mkdir(exist_ok=True)
    with _locked(STATE / f"requirements-venv-{digest}.lock"):
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True, timeout=300)
            subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", "--quiet", "-r",
                            str(REQUIREMENTS)], check=True, timeout=1800, env=_clean_env(os.environ))
            (venv / ".complete").write_text(REQUIREMENTS.read_text())
    return venv


def _clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without the project's .venv: not on PATH, not activated, nothing on PYTHONPATH."""
    ours = str(PROJECT / ".venv")
    path = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep) if not d.startswith(ours))
    return {**{k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}, "PATH": path}


def test_the_venv_holds_exactly_the_file_and_not_the_checkout(requirements_venv):
    python = str(requirements_venv / "bin" / "python")
    freeze = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    assert required(freeze) == required(REQUIREMENTS.read_text())
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('workflows') is not None)"
    assert subprocess.run([python, "-c", probe], cwd="/", env=_clean_env(os.environ)).returncode == 0


@pytest.mark.cluster
@pytest.mark.parametrize("variant", ["htex", "flux", "mpi"])
def test_each_variant_runs_to_the_end_in_the_requirements_venv(slurm_cluster, shared_dir, requirements_venv,
                                                               request, variant):
    if variant == "flux":
        request.getfixturevalue("flux_ready")
    run_dir = shared_dir / "r"
    proc = subprocess.run([str(requirements_venv / "bin" / "python"), str(PROJECT / "workflows" / "run.py"), variant,
                           "--no-spack", "--repeats", "2", "--run-dir", str(run_dir), "--json"],
                          env=_clean_env(slurm_cluster.env), cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((run_dir / "result.json").read_text())
    assert data["verified"] and data["problems"] == [] and len(data["runs"]) == 2
    assert data["parameters"]["venv"] == str(requirements_venv)  # its workers ran in that venv too
    assert (run_dir / "placement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert our_jobs(slurm_cluster.env) == []
