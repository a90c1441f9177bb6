"""Reproducible writing and safe, verifying reading of the bundle file (a tar, zstd or gzip).

Writing: the manifest first, then every store path in manifest order, sorted entries, fixed mtime,
uid/gid 0, no owner names, no names or times in the compressor's header: the same tree gives the same bytes.
Reading: every member is checked against the manifest before any byte of it reaches a sink.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from bundle.manifest import CHUNK, BundleError, canonical, check, link_escapes, manifest_hash

MANIFEST_NAME = "MANIFEST.json"
DEFAULT_EPOCH = 315532800  # 1980-01-01, what reproducible-builds tools use when SOURCE_DATE_EPOCH is unset
HASH_IN_NAME = re.compile(r"([0-9a-f]{32,64})")
SUFFIX = {"zstd": ".tar.zst", "gzip": ".tar.gz"}


def epoch() -> int:
    try:
        return int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    except ValueError:
        raise BundleError("SOURCE_DATE_EPOCH is not an integer") from None


def bundle_name(label: str, digest: str, compression: str) -> str:
    """The file name carries the manifest hash (32 hex digits), so a renamed or altered bundle is caught."""
    return f"{label}-{digest[:32]}{SUFFIX[compression]}"


def output_path(output: str | Path, digest: str, compression: str) -> Path:
    """-o DIR gives DIR/bundle-<hash>; -o FILE keeps FILE when it already names the hash, else inserts it."""
    out = Path(output)
    if out.is_dir() or str(output).endswith("/"):
        return out / bundle_name("bundle", digest, compression)
    if digest[:32] in out.name:
        return out
    label = out.name
    for suffix in (".tar.zst", ".tar.gz", ".tzst", ".tgz", ".bundle"):
        if label.endswith(suffix):
            label = label[: -len(suffix)]
            break
    return out.with_name(bundle_name(label, digest, compression))


def _info(name: str, kind: bytes, mode: int, mtime: int, size: int = 0, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, target
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _TarWriter:
    """A minimal streaming tar writer: ustar headers (PAX only for names too long for ustar),
    data, padding; faster than tarfile's stream on 50,000 members and read back by any tar."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.offset = f, 0

    def _write(self, data: bytes) -> None:
        self.f.write(data)
        self.offset += len(data)

    def add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        try:
            header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        except ValueError:
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self._write(header)
        if data is None:
            return
        left = info.size
        while left and (chunk := data.read(min(CHUNK, left))):
            self._write(chunk)
            left -= len(chunk)
        if left or data.read(1):
            raise BundleError(f"{info.name} changed size since it was hashed")
        if info.size % tarfile.BLOCKSIZE:
            self._write(b"\0" * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE))

    def close(self) -> None:
        self._write(b"\0" * (2 * tarfile.BLOCKSIZE))
        if self.offset % tarfile.RECORDSIZE:
            self._write(b"\0" * (tarfile.RECORDSIZE - self.offset % tarfile.RECORDSIZE))


def write(manifest: dict, out: str | Path, *, compression: str = "zstd", level: int | None = None,
          threads: int | None = None, on_file: Callable[[int], None] | None = None) -> Path:
    """Write the bundle for MANIFEST (files read from its root) to OUT; returns the final path."""
    if compression not in SUFFIX:
        raise BundleError(f"unknown compression {compression!r} (zstd or gzip)")
    digest = manifest_hash(manifest)
    final = output_path(out, digest, compression)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    mtime, root = epoch(), Path(manifest["root"])
    try:
        with open(tmp, "wb") as raw:
            if compression == "zstd":
                workers = threads if threads is not None else max(1, os.cpu_count() or 1)
                cctx = zstandard.ZstdCompressor(level=level or 3, threads=max(1, workers),
                                                write_content_size=False, write_checksum=True)
                stream: BinaryIO = cctx.stream_writer(raw, closefd=False)
            else:
                stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level or 6)
            out = _TarWriter(io.BufferedWriter(stream, buffer_size=CHUNK))  # type: ignore[arg-type]
            data = canonical(manifest)
            out.add(_info(MANIFEST_NAME, tarfile.REGTYPE, 0o644, mtime, len(data)), io.BytesIO(data))
            for sp in manifest["paths"]:
                key = sp["key"]
                out.add(_info(key, tarfile.DIRTYPE, sp["mode"], mtime))
                for e in sp["files"]:
                    name = f"{key}/{e['path']}"
                    if e["type"] == "dir":
                        out.add(_info(name, tarfile.DIRTYPE, e["mode"], mtime))
                    elif e["type"] == "link":
                        out.add(_info(name, tarfile.SYMTYPE, 0o777, mtime, target=e["target"]))
                    else:
                        with open(root / name, "rb") as f:
                            out.add(_info(name, tarfile.REGTYPE, e["mode"], mtime, e["size"]), f)
                        if on_file:
                            on_file(e["size"])
            out.close()
            out.f.flush()
            stream.close()
    except OSError as err:
        tmp.unlink(missing_ok=True)
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        raise BundleError(f"writing {final}: {err.strerror or err}{where}") from None
    except (tarfile.TarError, BundleError) as err:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"writing {final}: {err} (did the tree change while packing?)") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    return final


def _decompressed(raw: BinaryIO, bundle: Path) -> BinaryIO:
    magic = raw.read(4)
    raw.seek(0)
    if magic == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    raise BundleError(f"{bundle}: not a bundle (neither zstd nor gzip)")


def _check_name(bundle: Path, digest: str) -> None:
    found = HASH_IN_NAME.findall(bundle.name)
    if not found:
        raise BundleError(f"{bundle.name}: the name carries no manifest hash")
    if not any(digest.startswith(h) for h in found):
        raise BundleError(f"{bundle.name}: manifest hash {digest[:32]} does not match the bundle's name")


class Sink(Protocol):
    """Where verified members go (deploy's staging); reading without a sink only verifies."""

    def wants(self, sp: dict) -> bool: ...
    def directory(self, sp: dict, rel: str, mode: int) -> None: ...
    def symlink(self, sp: dict, rel: str, target: str) -> None: ...
    def file(self, sp: dict, rel: str, mode: int) -> BinaryIO: ...
    def done(self, sp: dict) -> None: ...


_KIND = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device", tarfile.FIFOTYPE: "fifo",
         tarfile.CONTTYPE: "contiguous file", tarfile.GNUTYPE_SPARSE: "sparse file"}


def _member_key(name: str, keys: list[str]) -> tuple[str, str] | None:
    for key in keys:
        if name == key:
            return key, ""
        if name.startswith(key + "/"):
            return key, name[len(key) + 1:]
    return None


def _refuse_unsafe(member: tarfile.TarInfo, root: str, keys: list[str]) -> None:
    name = member.name
    if name.startswith("/"):
        raise BundleError(f"member {name}: absolute path")
    if ".." in name.split("/"):
        raise BundleError(f"member {name}: '..' in path")
    if member.type in _KIND:
        raise BundleError(f"member {name}: {_KIND[member.type]} refused")
    if member.mode & 0o6000:
        raise BundleError(f"member {name}: setuid or setgid bit refused")
    if member.islnk() or member.issym():
        where = _member_key(name, keys)
        key = where[0] if where else name.split("/")[0]
        rel = where[1] if where else name
        target = member.linkname
        if member.islnk():  # hard link targets are archive names, not relative to the link
            target = "/" + root.strip("/") + "/" + target if not target.startswith("/") else target
        if link_escapes(rel, target, key, root):
            kind = "hard link" if member.islnk() else "symlink"
            raise BundleError(f"member {name}: {kind} to {member.linkname} points outside its store path")
        if member.islnk():
            raise BundleError(f"member {name}: hard link not in the manifest")


def read(bundle: Path, sink: Sink | None = None, *, manifest_only: bool = False,
         on_file: Callable[[int], None] | None = None) -> tuple[dict, str]:
    """Read BUNDLE, checking name, manifest and every member; returns (manifest, manifest hash).

    Members go to SINK only after their path, type, mode and link target are checked; a file's
    sha256 is checked as it streams, and SINK.done(sp) is called once a store path is complete.
    Any problem raises BundleError, so the caller can drop what the sink staged.
    """
    bundle = Path(bundle)
    try:
        raw = open(bundle, "rb")
    except OSError as err:
        raise BundleError(f"{bundle}: {err.strerror}") from None
    try:
        stream = io.BufferedReader(_decompressed(raw, bundle), buffer_size=CHUNK)  # type: ignore[arg-type]
        with raw, tarfile.open(fileobj=stream, mode="r|") as tar:
            return _read(bundle, tar, sink, manifest_only, on_file)
    except (tarfile.TarError, zstandard.ZstdError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise BundleError(f"{bundle.name}: truncated or corrupted ({err})") from None
    except OSError as err:
        if err.errno is None:
            raise BundleError(f"{bundle.name}: truncated or corrupted ({err})") from None
        raise


def _read(bundle: Path, tar: tarfile.TarFile, sink: Sink | None, manifest_only: bool,
          on_file: Callable[[int], None] | None) -> tuple[dict, str]:
    first = tar.next()
    if first is None or first.name != MANIFEST_NAME or not first.isfile():
        raise BundleError(f"{bundle.name}: first member is not {MANIFEST_NAME}")
    data = tar.extractfile(first).read()
    digest = hashlib.sha256(data).hexdigest()
    _check_name(bundle, digest)
    try:
        manifest = json.loads(data)
    except ValueError as err:
        raise BundleError(f"{bundle.name}: manifest is not JSON ({err})") from None
    check(manifest)
    if manifest_only:
        return manifest, digest
    root = manifest["root"]
    keys = sorted((sp["key"] for sp in manifest["paths"]), key=len, reverse=True)
    paths = {sp["key"]: sp for sp in manifest["paths"]}
    expected = {sp["key"]: {e["path"]: e for e in sp["files"]} for sp in manifest["paths"]}
    seen: dict[str, set[str]] = {k: set() for k in paths}
    writing: dict[str, bool] = {}
    current: str | None = None

    def finish(key: str) -> None:
        missing = sorted(expected[key].keys() - seen[key] - {""})
        if "" not in seen[key] or missing:
            raise BundleError(f"{key}/{missing[0] if missing else ''}: in the manifest, missing from the archive")
        if sink and writing[key]:
            sink.done(paths[key])

    while (member := tar.next()) is not None:
        tar.members = []  # stream mode: keep memory flat on 50,000 members
        _refuse_unsafe(member, root, keys)
        where = _member_key(member.name, keys)
        if where is None:
            raise BundleError(f"member {member.name}: not in the manifest")
        key, rel = where
        sp = paths[key]
        entry = expected[key].get(rel) if rel else {"type": "dir", "mode": sp["mode"]}
        if entry is None:
            raise BundleError(f"member {member.name}: not in the manifest")
        if rel in seen[key]:
            raise BundleError(f"member {member.name}: appears twice")
        if key != current:
            if current is not None:
                finish(current)
            if seen[key]:
                raise BundleError(f"member {member.name}: store path {key} is split in the archive")
            current = key
            writing[key] = bool(sink and sink.wants(sp))
            if rel:
                raise BundleError(f"member {member.name}: store path {key} does not start with its directory")
        seen[key].add(rel)
        kind = "dir" if member.isdir() else "link" if member.issym() else "file" if member.isfile() else "?"
        if kind != entry["type"]:
            raise BundleError(f"member {member.name}: a {kind} in the archive, a {entry['type']} in the manifest")
        if kind != "link" and member.mode != entry["mode"]:
            raise BundleError(f"member {member.name}: mode {member.mode:o} differs from the manifest")
        write_it = writing[key]
        if kind == "dir":
            if write_it:
                sink.directory(sp, rel, entry["mode"])
        elif kind == "link":
            if member.linkname != entry["target"]:
                raise BundleError(f"member {member.name}: symlink target differs from the manifest")
            if write_it:
                sink.symlink(sp, rel, entry["target"])
        else:
            if member.size != entry["size"]:
                raise BundleError(f"member {member.name}: size {member.size} differs from the manifest")
            _copy_verified(tar, member, entry, sink.file(sp, rel, entry["mode"]) if write_it else None)
            if on_file:
                on_file(entry["size"])
    if current is not None:
        finish(current)
    for key in paths:
        if not seen[key]:
            raise BundleError(f"{key}: in the manifest, missing from the archive")
    return manifest, digest


def _copy_verified(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: dict, out: BinaryIO | None) -> None:
    src = tar.extractfile(member)
    digest = hashlib.sha256()
    try:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    if digest.hexdigest() != entry["sha256"]:
        raise BundleError(f"member {member.name}: sha256 mismatch")
