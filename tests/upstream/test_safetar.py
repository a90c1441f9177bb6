"""upstream.safetar: filter="data"'s rules on every Python, the stdlib's filter where it has one and the
project's own (data_member) where it has not (Debian 12's python3 3.11.2). Both paths are exercised on any
interpreter: extract() takes the stdlib's when present, data_member() is called directly."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from upstream import safetar


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    return info


HOSTILE = {
    "outside its folder": [(_info("top/../../escaped"), b"x")],
    "absolute path": [(_info("/top/abs"), b"x")],  # the stdlib strips the slash, as does data_member
    "a device": [(_info("top/dev", tarfile.CHRTYPE), None)],
    "a fifo": [(_info("top/fifo", tarfile.FIFOTYPE), None)],
    "an absolute link": [(_info("top/l", tarfile.SYMTYPE, "/etc/passwd"), None)],
    "a link out": [(_info("top/l", tarfile.SYMTYPE, "../.."), None)],
    "a hard link out": [(_info("top/h", tarfile.LNKTYPE, "../outside"), None)],
    "a file through a link out": [(_info("top/l", tarfile.SYMTYPE, "."), None),
                                  (_info("top/l/../../x"), b"x")],
}


# The project's own rules everywhere; the stdlib's filter beside them where this Python has it.
PATHS = [False] + ([True] if hasattr(tarfile, "data_filter") else [])


@pytest.mark.parametrize("stdlib", PATHS, ids=lambda s: "stdlib" if s else "own")
@pytest.mark.parametrize("case", [c for c in HOSTILE if c != "absolute path"])
def test_a_hostile_member_is_refused(case: str, stdlib: bool, tmp_path: Path) -> None:
    dest = tmp_path / "a" / "b"
    with pytest.raises(safetar.UnsafeMember):
        safetar.extract(_tar(*HOSTILE[case]), dest, stdlib=stdlib)
    outside = [p for p in tmp_path.rglob("*") if p != dest.parent and not p.is_relative_to(dest)]
    assert outside == []


@pytest.mark.parametrize("stdlib", PATHS, ids=lambda s: "stdlib" if s else "own")
def test_a_leading_slash_is_stripped_not_followed(stdlib: bool, tmp_path: Path) -> None:
    safetar.extract(_tar(*HOSTILE["absolute path"]), tmp_path, stdlib=stdlib)
    assert (tmp_path / "top" / "abs").read_bytes() == b"x"


@pytest.mark.parametrize("stdlib", PATHS, ids=lambda s: "stdlib" if s else "own")
def test_modes_lose_setuid_and_group_write_and_keep_owner_read_write(stdlib: bool, tmp_path: Path) -> None:
    members = [(_info("top/suid", mode=0o6777), b"x"), (_info("top/ro", mode=0o444), b"y"),
               (_info("top/noexec", mode=0o677), b"z")]
    safetar.extract(_tar(*members), tmp_path, stdlib=stdlib)
    modes = {p.name: p.stat().st_mode & 0o7777 for p in (tmp_path / "top").iterdir()}
    assert modes == {"suid": 0o755, "ro": 0o644, "noexec": 0o644}


@pytest.mark.parametrize("stdlib", PATHS, ids=lambda s: "stdlib" if s else "own")
def test_a_link_inside_the_folder_is_kept(stdlib: bool, tmp_path: Path) -> None:
    safetar.extract(_tar((_info("top/f"), b"x"), (_info("top/l", tarfile.SYMTYPE, "f"), None)), tmp_path,
                    stdlib=stdlib)
    assert (tmp_path / "top" / "l").read_bytes() == b"x"
