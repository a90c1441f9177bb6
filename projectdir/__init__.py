"""Where the project's checkout is (the folder of its spack.yaml and pyproject.toml), and where its code runs from.

The console scripts run from a checkout (an editable install, PYTHONPATH, scripts/console-script) or from a
wheel installed into site-packages, which holds no spack.yaml. So the checkout is looked up, first hit wins:
$PARSL_MPI_STACK_PROJECT (or a command's own option), the working directory and its parents, then the
source tree this package was imported from. The packages call this module instead of each guessing from
their own __file__.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .cli import Error

ENV = "PARSL_MPI_STACK_PROJECT"
NAME = "parsl-mpi-stack"  # pyproject.toml's [project] name: another project's spack.yaml is not this one
_NAME_LINE = re.compile(r'^name\s*=\s*["\']' + re.escape(NAME) + r'["\']\s*$', re.MULTILINE)


class ProjectdirError(Error):
    """The one error base of projectdir (projectdir/cli.py: its message is the line a command prints)."""


class NotFound(ProjectdirError, LookupError):
    """No checkout of the project where it was looked for; the message is one line that says how to give one."""

    refused = True


def is_checkout(folder: Path) -> bool:
    """A folder holding spack.yaml and this project's pyproject.toml."""
    try:
        return (folder / "spack.yaml").is_file() and bool(_NAME_LINE.search((folder / "pyproject.toml").read_text()))
    except (OSError, UnicodeDecodeError):
        return False


def import_root() -> Path:
    """The folder the project's packages are imported from: the checkout, or site-packages when installed.

    What the nodes must see (the workers import workflows.launch from it) and what a subprocess puts on
    PYTHONPATH to import the same code.
    """
    return Path(__file__).resolve().parent.parent


def find(explicit: str | Path | None = None, cwd: Path | None = None) -> Path | None:
    """The checkout (explicit, else $PARSL_MPI_STACK_PROJECT, else the working directory up, else the source
    tree), or None. An explicit folder that is not a checkout is an error, never passed over."""
    given = explicit or os.environ.get(ENV)
    if given:
        folder = Path(given).expanduser().resolve()
        if not is_checkout(folder):
            source = "" if explicit else f"${ENV}="
            raise NotFound(f"{source}{given} is not a {NAME} checkout (no spack.yaml and pyproject.toml of the "
                           "project in it)")
        return folder
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if is_checkout(folder):
            return folder
    tree = import_root()
    return tree if is_checkout(tree) else None


def required(explicit: str | Path | None = None, cwd: Path | None = None) -> Path:
    """find(), or NotFound with the one line that says how to name a checkout."""
    folder = find(explicit, cwd)
    if folder is None:
        raise NotFound(f"no {NAME} checkout here: run inside one (the folder holding its spack.yaml and "
                       f"pyproject.toml, or below it) or set {ENV}=DIR")
    return folder
