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
import queue
import re
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from bundle import tarstream
from bundle.manifest import CHUNK, BundleError, canonical, check, check_digest, link_escapes, manifest_hash

MANIFEST_NAME = "MANIFEST.json"
DEFAULT_EPOCH = 315532800  # 1980-01-01, what reproducible-builds tools use when SOURCE_DATE_EPOCH is unset
HASH_IN_NAME = re.compile(r"([0-9a-f]{32,64})")
SUFFIX = {"zstd": ".tar.zst", "gzip": ".tar.gz"}
# The manifest is read into memory (and parsed): 128 MiB is ~800,000 files, several times a large Spack store.
MANIFEST_MAX = 128 << 20


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


def write(manifest: dict, out: str | Path, *, compression: str = "zstd", level: int | None = None,
          threads: int | None = None, on_file: Callable[[int], None] | None = None) -> Path:
    """Write the bundle for MANIFEST (files read from its root) to OUT; returns the final path."""
    if compression not in SUFFIX:
        raise BundleError(f"unknown compression {compression!r} (zstd or gzip)")
    digest = manifest_hash(manifest)
    final = output_path(out, digest, compression)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(final.parent)
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


READ_BLOCK = 4 << 20  # decompressed bytes per block handed from the decompressing thread to the reader


def _chunks(raw: BinaryIO, bundle: Path) -> Iterator[bytes]:
    """The decompressed stream in blocks of up to READ_BLOCK bytes."""
    magic = raw.read(4)
    raw.seek(0)
    if magic == b"\x28\xb5\x2f\xfd":
        stream: BinaryIO = zstandard.ZstdDecompressor().stream_reader(raw, read_size=CHUNK, read_across_frames=True,
                                                                       closefd=False)
    elif magic[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    else:
        raise BundleError(f"{bundle}: not a bundle (neither zstd nor gzip)")
    while block := stream.read(READ_BLOCK):
        yield block


_END = object()


def _in_background(chunks: Iterator[bytes], depth: int = 8) -> Iterator[bytes]:
    """CHUNKS produced by a thread, DEPTH ahead: zstd and zlib release the GIL while they decompress, so
    decompression runs beside the parsing (this thread) and the hashing and writing (the sink's threads).
    Errors of the producer are raised here; closing the iterator stops and joins the thread."""
    handoff: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_END)
        except BaseException as err:  # noqa: B036 - handed to the consumer, which raises it
            put(err)

    thread = threading.Thread(target=produce, name="bundle-decompress", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _check_name(bundle: Path, digest: str) -> None:
    found = HASH_IN_NAME.findall(bundle.name)
    if not found:
        raise BundleError(f"{bundle.name}: the name carries no manifest hash")
    if not any(digest.startswith(h) for h in found):
        raise BundleError(f"{bundle.name}: manifest hash {digest[:32]} does not match the bundle's name")


class Sink(Protocol):
    """Where checked members go (deploy's staging); reading without a sink only verifies.

    A sink takes over the sha256 check of the files it is given (so hashing can run beside the
    parsing): it keeps a file only when its bytes match entry["sha256"], and finish() raises the
    first mismatch or write error. read() calls finish() before it returns, so a read that
    returns has verified every file either way.
    """

    def wants(self, sp: dict) -> bool: ...
    def directory(self, sp: dict, rel: str, mode: int) -> None: ...
    def symlink(self, sp: dict, rel: str, target: str) -> None: ...
    def file(self, sp: dict | None, rel: str, entry: dict, name: str, tar: tarstream.Reader) -> None:
        """Read the file's entry["size"] bytes from TAR (views, valid until the sink lets them go);
        SP None: verify only, write nothing."""
    def done(self, sp: dict) -> None: ...
    def finish(self) -> None: ...


_KIND = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device", tarfile.FIFOTYPE: "fifo",
         tarfile.CONTTYPE: "contiguous file", tarfile.GNUTYPE_SPARSE: "sparse file"}
_ENTRY_TYPE = {tarstream.REG: "file", tarstream.DIR: "dir", tarstream.SYM: "link"}


class _Keys:
    """Which store path a member belongs to: members come grouped by store path, so the current one is
    tried first, then each '/'-prefix of the name (store paths never nest)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = set(keys)
        self.current, self.prefix = "", "\0"

    def find(self, name: str) -> tuple[str, str] | None:
        if name.startswith(self.prefix):
            return self.current, name[len(self.prefix):]
        if name in self.keys:
            self.current, self.prefix = name, name + "/"
            return name, ""
        pos = name.find("/")
        while pos > 0:
            if name[:pos] in self.keys:
                self.current, self.prefix = name[:pos], name[:pos + 1]
                return self.current, name[pos + 1:]
            pos = name.find("/", pos + 1)
        return None


def _refuse_unsafe(member: tarstream.Member, root: str, keys: _Keys) -> None:
    name, kind = member.name, member.type
    if name.startswith("/"):
        raise BundleError(f"member {name}: absolute path")
    if ".." in name and ".." in name.split("/"):
        raise BundleError(f"member {name}: '..' in path")
    if kind in _KIND or member.pax_keys and any(k.startswith("GNU.sparse.") for k in member.pax_keys):
        raise BundleError(f"member {name}: {_KIND.get(kind, 'sparse file')} refused")
    if member.mode & 0o6000:
        raise BundleError(f"member {name}: setuid or setgid bit refused")
    if kind in (tarstream.LNK, tarstream.SYM):
        where = keys.find(name)
        key = where[0] if where else name.split("/")[0]
        rel = where[1] if where else name
        target = member.linkname
        if kind == tarstream.LNK:  # hard link targets are archive names, not relative to the link
            target = "/" + root.strip("/") + "/" + target if not target.startswith("/") else target
        if link_escapes(rel, target, key, root):
            what = "hard link" if kind == tarstream.LNK else "symlink"
            raise BundleError(f"member {name}: {what} to {member.linkname} points outside its store path")
        if kind == tarstream.LNK:
            raise BundleError(f"member {name}: hard link not in the manifest")
    if kind not in _ENTRY_TYPE:
        raise BundleError(f"member {name}: tar member type {kind!r} refused")


def read(bundle: Path, sink: Sink | None = None, *, manifest_only: bool = False,
         on_file: Callable[[int], None] | None = None, known: tuple[dict, str] | None = None) -> tuple[dict, str]:
    """Read BUNDLE, checking name, manifest and every member; returns (manifest, manifest hash).

    Members go to SINK only after their path, type, mode, size and link target are checked against
    the manifest; every file's sha256 is checked (by SINK when there is one, see Sink).
    SINK.done(sp) is called once a store path is complete. Any problem raises BundleError (or the
    sink's OSError), so the caller can drop what the sink staged. KNOWN, the (manifest, hash) of an
    earlier read of this bundle, saves parsing and checking the manifest again when its bytes hash the same.
    """
    bundle = Path(bundle)
    try:
        raw = open(bundle, "rb")
    except OSError as err:
        raise BundleError(f"{bundle}: {err.strerror}") from None
    blocks = _in_background(_chunks(raw, bundle)) if not manifest_only else _chunks(raw, bundle)
    try:
        with raw:
            try:
                return _read(bundle, tarstream.Reader(blocks), sink, manifest_only, on_file, known)
            finally:
                blocks.close()  # type: ignore[attr-defined]
    except (tarstream.TarError, zstandard.ZstdError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise BundleError(f"{bundle.name}: truncated or corrupted ({err})") from None
    except OSError as err:
        if err.errno is None:
            raise BundleError(f"{bundle.name}: truncated or corrupted ({err})") from None
        raise


def _read(bundle: Path, tar: tarstream.Reader, sink: Sink | None, manifest_only: bool,
          on_file: Callable[[int], None] | None, known: tuple[dict, str] | None) -> tuple[dict, str]:
    members = iter(tar)
    first = next(members, None)
    if first is None or first.name != MANIFEST_NAME or first.type != tarstream.REG:
        raise BundleError(f"{bundle.name}: first member is not {MANIFEST_NAME}")
    if first.size > MANIFEST_MAX:  # declared sizes are checked before anything is read into memory
        raise BundleError(f"{bundle.name}: {MANIFEST_NAME} declares {first.size} bytes, over the limit of "
                          f"{MANIFEST_MAX >> 20} MiB")
    data = b"".join(tar.data(first.size))
    digest = hashlib.sha256(data).hexdigest()
    _check_name(bundle, digest)
    if known is not None and known[1] == digest:
        manifest = known[0]
    else:
        try:
            manifest = json.loads(data)
        except (ValueError, RecursionError) as err:
            raise BundleError(f"{bundle.name}: manifest is not JSON ({err})") from None
        check(manifest)
    if manifest_only:
        return manifest, digest
    root = manifest["root"]
    paths = {sp["key"]: sp for sp in manifest["paths"]}
    keys = _Keys(paths)
    expected = {sp["key"]: {e["path"]: e for e in sp["files"]} for sp in manifest["paths"]}
    seen: dict[str, set[str]] = {k: set() for k in paths}
    writing = False
    current: str | None = None

    def finish(key: str) -> None:
        missing = sorted(expected[key].keys() - seen[key] - {""})
        if "" not in seen[key] or missing:
            raise BundleError(f"{key}/{missing[0] if missing else ''}: in the manifest, missing from the archive")
        if sink and writing:
            sink.done(paths[key])

    sp: dict = {}
    entries: dict[str, dict] = {}
    done: set[str] = set()
    for member in members:
        _refuse_unsafe(member, root, keys)
        where = keys.find(member.name)
        if where is None:
            raise BundleError(f"member {member.name}: not in the manifest")
        key, rel = where
        if key != current:
            if rel and rel not in expected[key]:  # the same refusals, in the same order, as within a store path
                raise BundleError(f"member {member.name}: not in the manifest")
            if rel in seen[key]:
                raise BundleError(f"member {member.name}: appears twice")
            if current is not None:
                finish(current)
            if seen[key]:
                raise BundleError(f"member {member.name}: store path {key} is split in the archive")
            if rel:
                raise BundleError(f"member {member.name}: store path {key} does not start with its directory")
            current, sp, entries, done = key, paths[key], expected[key], seen[key]
            writing = bool(sink and sink.wants(sp))
        entry = entries.get(rel) if rel else {"type": "dir", "mode": sp["mode"]}
        if entry is None:
            raise BundleError(f"member {member.name}: not in the manifest")
        if rel in done:
            raise BundleError(f"member {member.name}: appears twice")
        done.add(rel)
        kind = _ENTRY_TYPE[member.type]
        if kind != entry["type"]:
            raise BundleError(f"member {member.name}: a {kind} in the archive, a {entry['type']} in the manifest")
        if kind != "link" and member.mode != entry["mode"]:
            raise BundleError(f"member {member.name}: mode {member.mode:o} differs from the manifest")
        if kind == "dir":
            if writing:
                sink.directory(sp, rel, entry["mode"])  # type: ignore[union-attr]
        elif kind == "link":
            if member.linkname != entry["target"]:
                raise BundleError(f"member {member.name}: symlink target differs from the manifest")
            if writing:
                sink.symlink(sp, rel, entry["target"])  # type: ignore[union-attr]
        else:
            if member.size != entry["size"]:
                raise BundleError(f"member {member.name}: size {member.size} differs from the manifest")
            if sink is not None:
                sink.file(sp if writing else None, rel, entry, member.name, tar)
            else:
                check_digest(member.name, tar.pieces(member.size), entry["sha256"])
            if on_file:
                on_file(entry["size"])
    if current is not None:
        finish(current)
    for key in paths:
        if not seen[key]:
            raise BundleError(f"{key}: in the manifest, missing from the archive")
    if sink is not None:
        sink.finish()
    return manifest, digest
