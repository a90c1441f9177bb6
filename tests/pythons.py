"""Older CPythons for the tests that run the project's code on them (pyenv's, under ~/.pyenv/versions), and
venvs of them cached under .state/pythons/, keyed by the interpreter and the requirements' digest, so a
second run reuses them. A missing interpreter skips the test outside CI and fails it in CI (needs.require).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.needs import require

PROJECT = Path(__file__).resolve().parent.parent
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
CACHE = PROJECT / ".state" / "pythons"
TOOLS_REQUIREMENTS = PROJECT / "env" / "tools-requirements.txt"
OLDEST_LOGIN = "3.9.18"  # RHEL 9's system python3 is 3.9: the login tools' floor
TOO_OLD_LOGIN = "3.8.18"
OLDEST_TARGET = "3.6.15"  # RHEL 8's is 3.6: a ship's target's floor
TOO_OLD_TARGET = "2.7.18"
OLDEST_ADMITTED = "3.10.13"  # the oldest Python pyproject's requires-python admits


def interpreter(version: str) -> Path:
    """pyenv's python of VERSION; skips (fails in CI) when it is not installed."""
    python = PYENV / version / "bin" / "python"
    if not os.access(python, os.X_OK):
        require(f"pyenv's Python {version} is not installed ({python})")
    return python


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file (comments and blank lines dropped)."""
    return [line.split("#", 1)[0].strip() for line in path.read_text().splitlines() if line.split("#", 1)[0].strip()]


def venv_key(python: Path, requirements: list[str]) -> str:
    """The cache key of a venv of PYTHON holding REQUIREMENTS: the interpreter's version and path, and the
    requirements' digest (a changed pin makes a new venv)."""
    digest = hashlib.sha256("\n".join([str(python.resolve()), *sorted(requirements)]).encode()).hexdigest()[:16]
    return f"{python.parent.parent.name}-{digest}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run building the same venv: wait for it
        yield


def venv(version: str, requirements: list[str]) -> Path:
    """The python of a venv of pyenv's VERSION with REQUIREMENTS installed, made once and reused (a venv
    left half-made by a killed run lacks its marker and is made again)."""
    python = interpreter(version)
    where = CACHE / venv_key(python, requirements)
    ready = where / "ready"
    with _locked(CACHE / f"{where.name}.lock"):
        if not ready.exists():
            shutil.rmtree(where, ignore_errors=True)
            subprocess.run([str(python), "-m", "venv", str(where)], check=True, capture_output=True, timeout=300)
            if requirements:
                pip = subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "-q",
                                      "--disable-pip-version-check", *requirements],
                                     capture_output=True, text=True, timeout=900)
                assert pip.returncode == 0, f"pip install into a {version} venv failed: {pip.stderr[-2000:]}"
            ready.write_text("\n".join(requirements) + "\n")
    return where / "bin" / "python"
