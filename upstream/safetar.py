"""Unpacking an untrusted source archive the way tarfile's `filter="data"` does, on every Python.

`tarfile.extractall(filter=...)` exists only from 3.8.17 / 3.9.17 / 3.10.12 / 3.11.4 / 3.12; Debian 12's own
python3 is 3.11.2. Where the stdlib filter exists it is used; elsewhere the same rules are applied here,
member by member as each is extracted (so a link unpacked earlier is followed when the next is checked).
"""

from __future__ import annotations

import copy
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

from .errors import UpstreamError


class UnsafeMember(UpstreamError, ValueError):
    """A member `filter="data"` refuses; the message names the member and why, in one line."""

    refused = True


def _inside(path: str, dest: str) -> bool:
    return os.path.commonpath([path, dest]) == dest


def data_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """MEMBER as `filter="data"` would extract it into DEST, or UnsafeMember: no absolute or escaping path,
    no device or fifo, no absolute link or link leaving DEST; no setuid/setgid/sticky or group/other write,
    owner read/write on files, the archive's owners ignored."""
    dest = os.path.realpath(dest)
    name = member.name.lstrip("/" + os.sep)
    if os.path.isabs(name):
        raise UnsafeMember(f"{member.name}: absolute path")
    if not _inside(os.path.realpath(os.path.join(dest, name)), dest):
        raise UnsafeMember(f"{member.name}: would land outside {dest}")
    if not (member.isreg() or member.islnk() or member.isdir() or member.issym()):
        raise UnsafeMember(f"{member.name}: a device or fifo, not data")
    if member.islnk() or member.issym():
        if os.path.isabs(member.linkname):
            raise UnsafeMember(f"{member.name}: link to the absolute path {member.linkname}")
        base = os.path.join(dest, os.path.dirname(name)) if member.issym() else dest
        if not _inside(os.path.realpath(os.path.join(base, member.linkname)), dest):
            raise UnsafeMember(f"{member.name}: link to {member.linkname}, outside {dest}")
    safe = copy.copy(member)
    safe.name = name
    if member.isreg() or member.islnk():
        mode = member.mode & 0o755
        safe.mode = (mode if mode & 0o100 else mode & ~0o111) | 0o600
    elif member.isdir():
        safe.mode = 0o755
    safe.uid, safe.gid, safe.uname, safe.gname = os.getuid(), os.getgid(), "", ""
    return safe


def _checked(tar: tarfile.TarFile, dest: str) -> Iterator[tarfile.TarInfo]:
    for member in tar:  # lazily: each is checked against what the members before it created
        yield data_member(member, dest)


def extract(tar: tarfile.TarFile, dest: Path, *, stdlib: bool | None = None) -> None:
    """Every member of TAR into DEST under the rules of `filter="data"`; UnsafeMember at the first it refuses.

    stdlib: the stdlib's filter (True) or data_member (False); by default the stdlib's where it exists.
    """
    if stdlib is None:
        stdlib = hasattr(tarfile, "data_filter")
    if stdlib:
        try:
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as err:
            raise UnsafeMember(str(err)) from None
        return
    tar.extractall(dest, members=_checked(tar, str(dest)))
