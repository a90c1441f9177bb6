"""archive: byte-identical packs, and every unsafe or damaged bundle refused with one line."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from bundle.errors import BundleError
from bundle.format.manifest import canonical, manifest_hash
from bundle.packing import scan, writer
from bundle.reading import reader
from tests.bundle.conftest import Built, build_tree, key, pack


def test_two_packs_byte_identical_whatever_mtimes_and_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_tree(tmp_path / "root")
    first = pack(root, tmp_path / "a" / "env.tar.zst")
    for i, (dirpath, dirs, names) in enumerate(os.walk(root)):
        for n in dirs + names:
            os.utime(os.path.join(dirpath, n), (1e9 + i, 1e9 + i), follow_symlinks=False)
    old = os.umask(0o077)
    try:
        second = pack(root, tmp_path / "b" / "env.tar.zst", threads=1)
    finally:
        os.umask(old)
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    g1, g2 = (pack(root, tmp_path / d / "env", compression="gzip") for d in ("c", "d"))
    assert g1.read_bytes() == g2.read_bytes() and g1.name.endswith(".tar.gz")
    assert g1.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime 0


def test_layout_manifest_first_fixed_owner_and_time(built: Built) -> None:
    with open(built.bundle, "rb") as raw:
        data = zstandard.ZstdDecompressor().stream_reader(raw).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert members[0].name == writer.MANIFEST_NAME
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", writer.DEFAULT_EPOCH)}
    frame = zstandard.get_frame_parameters(built.bundle.read_bytes()[:18])
    assert frame.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert manifest_hash(built.manifest)[:32] in built.bundle.name


def test_verify_reads_every_member(built: Built) -> None:
    files = []
    m, digest = reader.read(built.bundle, on_file=files.append)
    assert m == built.manifest and len(files) == sum(e["type"] == "file" for sp in m["paths"] for e in sp["files"])


# --- crafted bad bundles -------------------------------------------------------------------------

def members_of(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with open(bundle, "rb") as raw:
        data = zstandard.ZstdDecompressor().stream_reader(raw).read()
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers()[1:]:
            out.append((m, tar.extractfile(m).read() if m.isfile() else None))
    return out


def craft(out_dir: Path, m: dict, members: list[tuple[tarfile.TarInfo, bytes | None]], name: str | None = None) -> Path:
    data = canonical(m)
    path = out_dir / (name or writer.bundle_name("bad", manifest_hash(m), "zstd"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(writer.MANIFEST_NAME)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    path.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, mode: int = 0o644,
          link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.linkname = kind, size, mode, link
    return info


HELLO = key("hello")


def _bad(built: Built, case: str, tmp_path: Path) -> Path:
    """A bundle with one defect; the manifest is the good one unless the case needs otherwise."""
    m = built.manifest
    good = members_of(built.bundle)
    if case == "absolute":
        return craft(tmp_path, m, good + [(_info("/etc/evil", size=1), b"x")])
    if case == "dotdot":
        return craft(tmp_path, m, good + [(_info(f"{HELLO}/../../../../evil", size=1), b"x")])
    if case == "symlink-out":
        return craft(tmp_path, m, good + [(_info(f"{HELLO}/bin/evil", tarfile.SYMTYPE, link="../../../../etc"), None)])
    if case == "hardlink-out":
        return craft(tmp_path, m, good + [(_info(f"{HELLO}/bin/evil", tarfile.LNKTYPE, link="/etc/passwd"), None)])
    if case == "device":
        return craft(tmp_path, m, good + [(_info(f"{HELLO}/bin/dev", tarfile.CHRTYPE), None)])
    if case == "block-device":
        return craft(tmp_path, m, good + [(_info(f"{HELLO}/bin/dev", tarfile.BLKTYPE), None)])
    if case == "fifo":
        return craft(tmp_path, m, good + [(_info(f"{HELLO}/bin/fifo", tarfile.FIFOTYPE), None)])
    if case == "hardlink-in":
        return craft(tmp_path, m, good + [(_info(f"{HELLO}/bin/again", tarfile.LNKTYPE, link=f"{HELLO}/bin/hello"),
                                           None)])
    if case == "sparse":
        sparse = _info(f"{HELLO}/share/doc/README", size=1)
        sparse.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "x"}
        return craft(tmp_path, m, [(sparse, b"x") if i.name == sparse.name else (i, d) for i, d in good])
    if case in ("gnu-longname", "global-pax"):
        kind = tarfile.GNUTYPE_LONGNAME if case == "gnu-longname" else tarfile.XGLTYPE
        return craft(tmp_path, m, [(_info("././@LongLink", kind, size=6), b"/etc/\0")] + good)
    if case == "setuid":
        bad = [(i, d) for i, d in good]
        for info, _ in bad:
            if info.name == f"{HELLO}/bin/hello":
                info.mode = 0o4755
        return craft(tmp_path, m, bad)
    if case == "extra":
        return craft(tmp_path, m, good + [(_info(f"{HELLO}/bin/extra", size=1), b"x")])
    if case == "missing":
        return craft(tmp_path, m, [(i, d) for i, d in good if i.name != f"{HELLO}/share/doc/README"])
    if case == "sha":
        swapped = []
        for info, data in good:
            if info.name == f"{HELLO}/share/doc/README":
                data = data.upper()
            swapped.append((info, data))
        return craft(tmp_path, m, swapped)
    if case == "name":
        path = tmp_path / writer.bundle_name("renamed", "0" * 64, "zstd")
        path.write_bytes(built.bundle.read_bytes())
        return path
    data = built.bundle.read_bytes()
    path = tmp_path / built.bundle.name
    if case == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif case == "corrupted":
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 64]) + data[mid + 64:])
    return path


CASES = {
    "absolute": "absolute path", "dotdot": r"'\.\.' in path", "symlink-out": "symlink to .* points outside",
    "hardlink-out": "hard link to .* points outside", "device": "character device refused",
    "block-device": "block device refused", "fifo": "fifo refused", "hardlink-in": "hard link not in the manifest",
    "sparse": "sparse file refused", "gnu-longname": "tar member type b'L' refused",
    "global-pax": "tar member type b'g' refused",
    "setuid": "setuid or setgid", "extra": "not in the manifest", "missing": "missing from the archive",
    "sha": "sha256 mismatch", "name": "does not match the bundle's name", "truncated": "truncated or corrupted",
    "corrupted": "truncated or corrupted",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_bundle_refused(built: Built, tmp_path: Path, case: str) -> None:
    bad = _bad(built, case, tmp_path)
    with pytest.raises(BundleError, match=CASES[case]) as err:
        reader.read(bad)
    assert "\n" not in str(err.value)


def test_manifest_with_escaping_entry_refused(built: Built, tmp_path: Path) -> None:
    m = {**built.manifest, "paths": [dict(sp) for sp in built.manifest["paths"]]}
    m["paths"][0]["files"] = m["paths"][0]["files"] + [{"path": "zz", "type": "link", "target": "/etc/shadow"}]
    with pytest.raises(BundleError, match="points outside its store path"):
        reader.read(craft(tmp_path, m, members_of(built.bundle)), manifest_only=True)


def test_unknown_file_refused(tmp_path: Path) -> None:
    (tmp_path / "x-0123456789abcdef0123456789abcdef.tar.zst").write_bytes(b"not a bundle at all")
    with pytest.raises(BundleError, match="not a bundle"):
        reader.read(tmp_path / "x-0123456789abcdef0123456789abcdef.tar.zst")


def test_output_name_carries_the_hash(tmp_path: Path) -> None:
    digest = "ab" * 32
    assert writer.output_path(tmp_path, digest, "zstd") == tmp_path / f"bundle-{'ab' * 16}.tar.zst"
    assert writer.output_path(tmp_path / "env.tar.gz", digest, "gzip").name == f"env-{'ab' * 16}.tar.gz"
    named = tmp_path / f"mine-{'ab' * 16}.tar.zst"
    assert writer.output_path(named, digest, "zstd") == named


def test_pack_of_changing_tree_leaves_no_partial_bundle(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root")
    m = scan.build(root)
    (root / key("hello") / "share/doc/README").write_text("grew after hashing, so the tar size is wrong\n")
    with pytest.raises(BundleError, match="writing"):
        writer.write(m, tmp_path / "out" / "env")
    assert list((tmp_path / "out").iterdir()) == []
