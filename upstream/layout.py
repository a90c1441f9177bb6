"""Where the set-up's builds live: one prefix outside the checkout, one folder per pinned build."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

PREFIX_ENV = "PARSL_MPI_STACK_PREFIX"
MARKER = ".parsl-mpi-stack.json"  # written last: a build folder without it is incomplete


def prefix() -> Path:
    """$PARSL_MPI_STACK_PREFIX, else /opt/parsl-mpi-stack for root, else ~/.local/share/parsl-mpi-stack.

    Outside the checkout, so every clone (CI's included) reuses one build.
    """
    if os.environ.get(PREFIX_ENV):
        return Path(os.environ[PREFIX_ENV]).resolve()
    if os.geteuid() == 0:
        return Path("/opt/parsl-mpi-stack")
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "parsl-mpi-stack"


def python_tag() -> str:
    """The Python minor version Flux's bindings are built for: they import only in the same one."""
    return f"py{sys.version_info.major}.{sys.version_info.minor}"


def flux_dir(root: Path, core: str, sched: str) -> Path:
    return root / f"flux-core-{core}-sched-{sched}-{python_tag()}"


def spack_dir(root: Path, version: str) -> Path:
    return root / f"spack-{version}"


def packages_dir(root: Path, commit: str) -> Path:
    return root / f"spack-packages-{commit[:7]}"


def complete(folder: Path, pins: dict) -> bool:
    """A build folder is usable when its marker records exactly these pins."""
    try:
        return json.loads((folder / MARKER).read_text()) == pins
    except (OSError, ValueError):
        return False


def mark_complete(folder: Path, pins: dict) -> None:
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(pins, sort_keys=True) + "\n")
    tmp.rename(folder / MARKER)


@contextlib.contextmanager
def locked(root: Path, name: str) -> Iterator[None]:
    """One set-up at a time builds a given thing (two clones setting up at once wait for each other)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".lock-{name}").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
