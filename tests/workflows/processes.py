"""This machine's processes by name: the local cluster's nodes and a local Flux instance's brokers all run here."""

from __future__ import annotations

from pathlib import Path


def processes_named(name: str) -> list[int]:
    """The processes whose argv[0] is name (a rank that execs `sleep` under a name of its own, say)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().split(b"\0")[0] == name.encode():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found
