"""The console scripts ([project.scripts]) and the thin scripts/*.sh that run them answer --help."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PROJECT

ENTRY_POINTS = sorted(importlib.metadata.distribution("parsl-mpi-stack").entry_points, key=lambda e: e.name)
SCRIPTS = sorted(p.name for p in (PROJECT / "scripts").glob("*.sh"))


def test_every_python_cli_has_a_console_script():
    assert {e.value for e in ENTRY_POINTS} >= {"workflows.cli:main", "bundle.__main__:main", "localcluster.cli:main",
                                               "upstream.__main__:main"}
    assert all(e.name.startswith("parsl-mpi-") for e in ENTRY_POINTS)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
def test_console_script_answers_help(entry):
    assert callable(entry.load())
    proc = subprocess.run([str(Path(sys.executable).parent / entry.name), "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: "), proc.stdout + proc.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_thin_script_answers_help_with_its_own_name(name):
    proc = subprocess.run([str(PROJECT / "scripts" / name), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: "), proc.stdout + proc.stderr
    assert name in proc.stdout.splitlines()[0], proc.stdout  # the command the user typed, not a module path
