"""Reproducible writing of the bundle file (a tar, zstd or gzip): the manifest first, then every store
path in manifest order, sorted entries, fixed mtime, uid/gid 0, no owner names, no names or times in
the compressor's header: the same tree gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from bundle.errors import BundleError
from bundle.format.manifest import CHUNK, MANIFEST_NAME, canonical, manifest_hash
from bundle.format.records import Manifest

DEFAULT_EPOCH = 315532800  # 1980-01-01, what reproducible-builds tools use when SOURCE_DATE_EPOCH is unset
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
    """-o DIR/ gives DIR/bundle-<hash>.tar.zst; -o DIR/NAME gives DIR/NAME-<hash>.tar.zst (a .tar.zst or .tar.gz
    ending of NAME dropped first), or NAME itself when it already carries the hash."""
    out = Path(output)
    if out.is_dir() or str(output).endswith("/"):
        return out / bundle_name("bundle", digest, compression)
    if digest[:32] in out.name:
        return out
    label = out.name
    for suffix in (".tar.zst", ".tar.gz", ".tzst", ".tgz"):
        if label.endswith(suffix):
            label = label[: -len(suffix)]
            break
    return out.with_name(bundle_name(label, digest, compression))


_TMP = re.compile(r"^\..+\.tar\.(zst|gz)\.(\d+)\.tmp$")


def clean_leftovers(directory: Path) -> None:
    """Remove the temporary bundles a killed pack left in DIRECTORY (their process is gone)."""
    for entry in os.scandir(directory):
        match = _TMP.match(entry.name)
        if match and not _alive(int(match[2])):
            Path(entry.path).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def _compressor(raw: BinaryIO, compression: str, level: int | None, threads: int | None) -> BinaryIO:
    """The compressing stream over RAW: zstd (multi-threaded, with its checksum) or gzip, neither
    recording a name or a time."""
    if compression == "zstd":
        import zstandard  # imported here: a ship's target runs the reader on a bare python3

        workers = threads if threads is not None else max(1, os.cpu_count() or 1)
        cctx = zstandard.ZstdCompressor(level=level or 3, threads=max(1, workers), write_content_size=False,
                                        write_checksum=True)
        return cast(BinaryIO, cctx.stream_writer(raw, closefd=False))
    return cast(BinaryIO, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level or 6))


def _write_members(tar: _TarWriter, manifest: Manifest, on_file: Callable[[int], None] | None) -> None:
    """The manifest, then every store path in manifest order: its directory, then its entries (files read
    from the manifest's root)."""
    mtime, root = epoch(), Path(manifest["root"])
    data = canonical(manifest)
    tar.add(_info(MANIFEST_NAME, tarfile.REGTYPE, 0o644, mtime, len(data)), io.BytesIO(data))
    for sp in manifest["paths"]:
        key = sp["key"]
        tar.add(_info(key, tarfile.DIRTYPE, sp["mode"], mtime))
        for e in sp["files"]:
            name = f"{key}/{e['path']}"
            if e["type"] == "dir":
                tar.add(_info(name, tarfile.DIRTYPE, e["mode"], mtime))
            elif e["type"] == "link":
                tar.add(_info(name, tarfile.SYMTYPE, 0o777, mtime, target=e["target"]))
            else:
                with open(root / name, "rb") as f:
                    tar.add(_info(name, tarfile.REGTYPE, e["mode"], mtime, e["size"]), f)
                if on_file:
                    on_file(e["size"])


def write(manifest: Manifest, out: str | Path, *, compression: str = "zstd", level: int | None = None,
          threads: int | None = None, on_file: Callable[[int], None] | None = None) -> Path:
    """Write the bundle for MANIFEST (files read from its root) to OUT; returns the final path. It is
    written to a temporary file beside it and renamed: a failed or killed pack leaves no bundle."""
    if compression not in SUFFIX:
        raise BundleError(f"unknown compression {compression!r} (zstd or gzip)")
    final = output_path(out, manifest_hash(manifest), compression)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(final.parent)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            stream = _compressor(raw, compression, level, threads)
            tar = _TarWriter(io.BufferedWriter(stream, buffer_size=CHUNK))
            _write_members(tar, manifest, on_file)
            tar.close()
            tar.f.flush()
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
