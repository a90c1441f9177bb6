"""tarstream: the lean reader gives what tarfile gives on the archives bundle writes, in any chunking,
and stops on truncated or damaged streams."""

from __future__ import annotations

import io
import tarfile

import pytest

from bundle.reading import tarstream


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type, i.size, i.mode, i.linkname = kind, size, mode, link
    return i


def read_all(data: bytes, chunk: int, lists: bool = False) -> list[tuple[str, bytes, int, int, str, bytes]]:
    reader = tarstream.Reader(iter([data[i:i + chunk] for i in range(0, len(data), chunk)]))
    read = reader.pieces if lists else reader.data
    return [(m.name, m.type, m.mode, m.size, m.linkname, b"".join(read(m.size))) for m in reader]


SAMPLE = [
    (info("short", size=5), b"hello"),
    (info("d" * 90 + "/" + "n" * 90, size=3, mode=0o755), b"abc"),  # ustar prefix field
    (info("p" * 300, size=1), b"x"),  # PAX path
    (info("dir", tarfile.DIRTYPE, mode=0o700), None),
    (info("link", tarfile.SYMTYPE, link="t" * 200), None),  # PAX linkpath
    (info("empty"), b""),
    (info("big", size=256 * 273 + 4), bytes(range(256)) * 273 + b"tail"),
]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 512, 4096, 1 << 20])
def test_same_members_as_tarfile(fmt: int, chunk: int) -> None:
    sample = [(i, d) for i, d in SAMPLE if fmt != tarfile.USTAR_FORMAT or len(i.name) < 256 and len(i.linkname) < 100]
    data = tar_bytes(sample, fmt)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = [(m.name, m.type, m.mode, m.size if m.isfile() else 0, m.linkname,
                     tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]
    got = read_all(data, chunk)
    assert read_all(data, chunk, lists=True) == got
    if fmt == tarfile.GNU_FORMAT:  # GNU long names come as their own members, which bundle refuses
        assert any(t in (b"L", b"K") for _, t, *_ in got)
        got = [g for g in got if g[1] not in (b"L", b"K")]
        expected = [e for e in expected if len(e[0]) < 100 and len(e[4]) < 100]
        got = [g for g in got if len(g[0]) < 100 and len(g[4]) < 100]
    assert got == expected


def test_unread_data_is_skipped() -> None:
    reader = tarstream.Reader(iter([tar_bytes(SAMPLE)]))
    assert [m.name for m in reader][-1] == "big"


def test_raw_types_come_out_for_the_caller_to_refuse() -> None:
    data = tar_bytes([(info("fifo", tarfile.FIFOTYPE), None), (info("dev", tarfile.CHRTYPE), None),
                      (info("hard", tarfile.LNKTYPE, link="short"), None)])
    assert [(m.name, m.type) for m in tarstream.Reader(iter([data]))] == [
        ("fifo", b"6"), ("dev", b"3"), ("hard", b"1")]
    sparse = info("sparse", size=1)
    sparse.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
    (member,) = tarstream.Reader(iter([tar_bytes([(sparse, b"x")])]))
    assert "GNU.sparse.major" in member.pax_keys


@pytest.mark.parametrize("cut", [100, 512 + 3, 1024 + 100, 512 + 1024])  # the last: no end block
def test_truncated_stream(cut: int) -> None:
    data = tar_bytes([(info("a", size=600), b"a" * 600)])
    with pytest.raises(tarstream.TarError, match="truncated"):
        read_all(data[:cut], 4096)


def test_damaged_header_and_pax() -> None:
    data = bytearray(tar_bytes([(info("a", size=1), b"x")]))
    data[3] ^= 0x20
    with pytest.raises(tarstream.TarError, match="checksum"):
        read_all(bytes(data), 4096)
    bad_pax = info("x", size=1)
    bad_pax.pax_headers = {"size": "-5"}
    with pytest.raises(tarstream.TarError, match="PAX size"):
        read_all(tar_bytes([(bad_pax, b"x")]), 4096)
