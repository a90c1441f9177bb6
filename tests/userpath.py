"""An ordinary user on the local cluster's login node (this machine), for tests/test_cluster_path.py.

The user's shells start from nothing of the test process: `env -i` with HOME, USER and PATH=/usr/bin:/bin
(the system python3, no .venv, no pyenv), plus the cluster's client variables. The user's files live in
their home, which the nodes see (each node has a private /tmp, as real compute nodes do).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

NAME = "parslmpi-user"
SYSTEM_PATH = "/usr/bin:/bin"
CLIENT_VARS = ("SLURM_CONF", "PMIX_MCA_gds", "LOCAL_CLUSTER_ADDRESS")  # no OMPI_ALLOW_RUN_AS_ROOT: not root


@dataclass(frozen=True)
class User:
    name: str
    home: Path
    uid: int
    gid: int

    def environ(self, extra: dict[str, str] | None = None) -> list[str]:
        """`env -i` arguments: a login shell's basics and nothing of the caller."""
        base = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "PATH": SYSTEM_PATH,
                "LANG": "C.UTF-8", "SHELL": "/bin/bash"}
        return [f"{k}={v}" for k, v in {**base, **(extra or {})}.items()]

    def bash(self, script: str, *, cwd: Path, extra: dict[str, str] | None = None,
             timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """SCRIPT in a fresh bash (no profile, `set -euo pipefail`) as this user, in CWD."""
        cmd = ["runuser", "-u", self.name, "--", "env", "-i", *self.environ(extra),
               "bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", script]
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def own(self, path: Path) -> None:
        """PATH and everything below it made the user's (what the test prepared as root)."""
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)


def ordinary_user(name: str = NAME) -> User:
    """The user (made with a home when missing); the test must run as root to be someone else."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test runs the path as another, ordinary user (useradd, runuser)")
    if shutil.which("runuser") is None or shutil.which("useradd") is None:
        pytest.fail("runuser and useradd are needed to run as an ordinary user (Debian: util-linux, passwd)")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True,
                       capture_output=True, text=True)
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        pytest.fail(f"user {name} is root: the test needs an ordinary user")
    home = Path(entry.pw_dir)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return User(name, home, entry.pw_uid, entry.pw_gid)


def readable_by_all(path: Path) -> str | None:
    """None when every folder down to PATH lets others in (the user must read the cluster's slurm.conf)."""
    for part in [*reversed(path.parents), path]:
        mode = part.stat().st_mode
        if part.is_dir() and not mode & 0o001:
            return f"{part} is not searchable by other users (mode {oct(mode & 0o777)})"
    return None
