"""An ordinary (non-root) user for the tests of what a user without root runs, with a fresh clone of this checkout.

Creating a user needs root (CI runs as root): elsewhere the test skips with one line (fails under CI=true).
A test module makes its fixtures of account() and clone() (tests/test_login_node_user.py does). Commands
run through User.run with a clean environment, PATH holding only /usr/bin and /bin plus what the test adds,
as on a login node where nothing of this machine's set-up is on PATH.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .needs import require

PROJECT = Path(__file__).resolve().parent.parent
SYSTEM_PATH = ("/usr/bin", "/bin")


@dataclass(frozen=True)
class User:
    name: str
    home: Path

    def environment(self, path: Sequence[str] = (), env: Mapping[str, str] | None = None) -> dict[str, str]:
        """A login shell's few variables; PATH: `path`, then /usr/bin:/bin."""
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "LANG": "C.UTF-8",
                "PATH": os.pathsep.join([*path, *SYSTEM_PATH]), **(env or {})}

    def run(self, command: str, *, cwd: Path | None = None, path: Sequence[str] = (),
            env: Mapping[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """bash -c COMMAND as this user, in `cwd` (default: the home), nothing of the caller's environment kept."""
        variables = [f"{k}={v}" for k, v in self.environment(path, env).items()]
        return subprocess.run(["runuser", "-u", self.name, "--", "env", "-i", *variables, "bash", "-c", command],
                              cwd=cwd or self.home, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def give(self, path: Path) -> None:
        """Make `path` (a tree the test made as root) this user's."""
        subprocess.run(["chown", "-R", f"{self.name}:{self.name}", str(path)], check=True)


def missing() -> str | None:
    """Why no user can be made here, or None."""
    if os.geteuid() != 0:
        return "creating a user for the test needs root (useradd); CI runs as root"
    absent = [tool for tool in ("useradd", "userdel", "runuser") if shutil.which(tool) is None]
    return f"{', '.join(absent)} not found" if absent else None


@contextlib.contextmanager
def account(prefix: str = "pmsuser") -> Iterator[User]:
    """A new user with a home of its own for the block, removed (home included) after it."""
    require(missing())
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
    try:
        yield User(name, Path(pwd.getpwnam(name).pw_dir))
    finally:
        subprocess.run(["userdel", "--remove", "--force", name], check=False, capture_output=True)


def clone(user: User, project: Path = PROJECT, name: str = "parsl-mpi-stack") -> Path:
    """A fresh `git clone` of the checkout in the user's home, plus the working tree's uncommitted changes
    (tracked and untracked, ignored files not), so a test sees the code under test; owned by the user."""
    dest = user.home / name
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(project), str(dest)], check=True,
                   capture_output=True)
    listed = subprocess.run(["git", "-C", str(project), "ls-files", "-z", "--modified", "--others", "--deleted",
                             "--exclude-standard"], check=True, capture_output=True, text=True).stdout
    for relative in filter(None, set(listed.split("\0"))):
        source, target = project / relative, dest / relative
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif not source.exists():
            target.unlink(missing_ok=True)
    user.give(dest)
    return dest
