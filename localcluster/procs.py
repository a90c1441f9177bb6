"""Processes: running commands, telling live ones from zombies, stopping them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import LocalClusterError


class CommandError(LocalClusterError, RuntimeError):
    """A system command failed; the message is one line."""


def run(cmd: Sequence[str], *, check: bool = True, env: dict[str, str] | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; a failure becomes a one-line CommandError."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError:
        raise CommandError(f"{cmd[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{' '.join(cmd)}: timed out after {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise CommandError(f"{' '.join(cmd)}: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc


def alive(pid: int) -> bool:
    """True for a running process; a zombie counts as stopped (PID 1 here reaps slowly)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pids_matching(needle: str) -> list[int]:
    """Live processes whose command line contains needle (a cluster's root path, say)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and needle in cmdline(int(entry)):
            if alive(int(entry)):
                found.append(int(entry))
    return found


def stop(pids: Iterable[int], *, grace: float = 2.0, first: signal.Signals = signal.SIGTERM) -> None:
    """Send `first` (SIGTERM: a clean stop), wait up to grace seconds, then SIGKILL whatever still runs."""
    pids = [p for p in pids if alive(p)]
    for pid in pids:
        try:
            os.kill(pid, first)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)
