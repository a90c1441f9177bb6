"""Parsl's own tests of apps, run against Parsl's FluxExecutor and DirectFluxExecutor: the same outcome, test by test.

Parsl's suite (parsl/tests, shipped in its wheel) runs with its own conftest and its own pytest pin, in a
venv of its own under .state/parsl-suite (built once, reused while the pins hold): the installed Parsl's
test_bash_apps, test_python_apps and test_error_handling with a --config file per executor (config_*.py,
a two-broker Flux instance), and test_flux.py with --config local, where the tests make `FluxExecutor()`
themselves (direct_as_stock.py binds that name to DirectFluxExecutor). Counts and times go to
.state/parsl-suite/summary.json and are printed (pytest -s).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from workflows.flux import instance
from workflows.settings import PROJECT

from ..needs import require

pytestmark = pytest.mark.flux
HERE = Path(__file__).resolve().parent
STATE = PROJECT / ".state" / "parsl-suite"
# Parsl's test-requirements.txt (github.com/Parsl/parsl, newest stored: b8b474c, 2026-08-06; not in the sdist)
PYTEST_PIN = "pytest>=7.4.0,<8"
SUITES = ("test_bash_apps", "test_python_apps", "test_error_handling")
# Parsl's Makefile runs every config with -k "not cleannet" (tests that need a clean network)
SELECT = "not cleannet"
EXECUTORS = ("stock", "direct")


def requirements() -> list[str]:
    """The venv's packages: the Parsl this project runs (its tests with it), what Flux's bindings import, pytest."""
    return [*(f"{p}=={importlib.metadata.version(p)}" for p in ("parsl", "cffi", "PyYAML")), PYTEST_PIN]


def suite_venv() -> Path:
    """Parsl's test venv, made with this Python's base interpreter (Flux's bindings are built for its version)."""
    venv, wanted = STATE / "venv", "\n".join(requirements())
    ready = venv / "parsl-suite-requirements.txt"
    if ready.is_file() and ready.read_text() == wanted:
        return venv
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([str(base), "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *requirements()], capture_output=True, text=True,
                         timeout=900)
    assert pip.returncode == 0, f"pip install {' '.join(requirements())}: {pip.stderr[-2000:]}"
    ready.write_text(wanted)
    return venv


def parsl_tests(venv: Path) -> Path:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import parsl.tests, os; print(os.path.dirname("
                          "parsl.tests.__file__))"], capture_output=True, text=True, check=True, timeout=120)
    return Path(out.stdout.strip())


def pytest_command(venv: Path, tests: Path, executor: str, run: str, junit: Path) -> list[str]:
    """One run of Parsl's pytest: the config runs (SUITES with a config file) or test_flux.py (--config local)."""
    common = [str(venv / "bin" / "python"), "-m", "pytest", "-c", str(junit.parent / "pytest.ini"), "-q",
              "-p", "no:cacheprovider", f"--junitxml={junit}", "-o", "junit_family=xunit1", "-k", SELECT]
    if run == "local":
        plugin = ["-p", "tests.parsl_suite.direct_as_stock"] if executor == "direct" else []
        return [*common, *plugin, "--config", "local", str(tests / "test_flux.py")]
    return [*common, "--config", str(HERE / f"config_{executor}.py"), *(str(tests / s) for s in SUITES)]


def outcomes(junit: Path) -> dict[str, str]:
    """Each test case of a JUnit XML report (xunit1: with its file): passed, failed, error or skipped."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        name = f"{case.get('file')}::{case.get('name')}"  # the file: test_basic.py is in several suites
        assert name not in found, f"{junit}: two test cases named {name}"
        found[name] = {"failure": "failed"}.get(kinds[0], kinds[0]) if kinds else "passed"
    return found


def run_suite(venv: Path, tests: Path, executor: str) -> tuple[dict[str, str], float]:
    """Both runs of Parsl's suite against one executor, in a folder of their own (Parsl's conftest writes to cwd)."""
    found: dict[str, str] = {}
    started = time.monotonic()
    flux = instance.flux_command() or "flux"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [instance.bindings_path(flux), str(PROJECT)]))}
    for run in ("config", "local"):
        work = STATE / f"{executor}-{run}"
        work.mkdir(parents=True, exist_ok=True)
        (work / "pytest.ini").write_text("[pytest]\n")  # Parsl's own settings, not this project's pyproject.toml
        junit = work / "junit.xml"
        junit.unlink(missing_ok=True)
        proc = subprocess.run(pytest_command(venv, tests, executor, run, junit), cwd=work, env=env,
                              capture_output=True, text=True, timeout=1800)
        assert junit.is_file(), f"{executor}/{run}: no report (exit {proc.returncode}): {proc.stdout[-2000:]}"
        found.update(outcomes(junit))
    return found, time.monotonic() - started


def counts(found: dict[str, str]) -> dict[str, int]:
    return {kind: sum(1 for v in found.values() if v == kind) for kind in ("passed", "failed", "error", "skipped")}


def differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return [f"{name}: stock {a.get(name, 'absent')}, direct {b.get(name, 'absent')}"
            for name in sorted(a.keys() | b.keys()) if a.get(name) != b.get(name)]


def test_differences_are_listed_test_by_test() -> None:
    assert differences({"t::a": "passed", "t::b": "failed"}, {"t::a": "passed", "t::c": "passed"}) == [
        "t::b: stock failed, direct absent", "t::c: stock absent, direct passed"]


def test_parsl_s_own_suite_gives_the_same_outcomes_on_both_executors() -> None:
    require(instance.missing(bindings=True))
    venv = suite_venv()
    tests = parsl_tests(venv)
    assert (tests / "test_bash_apps").is_dir() and (tests / "conftest.py").is_file(), tests
    results = {executor: run_suite(venv, tests, executor) for executor in EXECUTORS}
    summary = {name: {**counts(found), "seconds": round(seconds, 1)} for name, (found, seconds) in results.items()}
    (STATE / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"Parsl's suite ({', '.join(SUITES)}, test_flux.py): {json.dumps(summary)}")
    stock, direct = results["stock"][0], results["direct"][0]
    assert summary["stock"]["passed"] > 100 and any("test_bash_apps" in n for n in stock), summary
    assert differences(stock, direct) == []
