"""Safe, verifying reading of the bundle file: every member is checked against the manifest (by a
Checker) before any byte of it reaches a sink; with no sink, reading only verifies.

Every read of a bundle is made with this module: a file (read), a pulled stream (read_manifest,
read_members), a ship's stream on the target (read_members), and the ship's sender, which picks
store paths out of a bundle (decompressed_blocks, in_background, KeyFinder, stream_errors).
"""

import gzip
import hashlib
import io
import json
import queue
import re
import tarfile
import threading
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Dict, Iterable, Iterator, Optional, Set, Tuple, Type, cast

from bundle.errors import BundleError
from bundle.format.manifest import CHUNK, MANIFEST_NAME, check, check_digest, link_escapes
from bundle.format.records import Entry, Manifest, StorePath
from bundle.reading import tarstream

HASH_IN_NAME = re.compile(r"([0-9a-f]{32,64})")
# The manifest is read into memory (and parsed): 128 MiB is ~800,000 files, several times a large Spack store.
MANIFEST_MAX = 128 << 20


READ_BLOCK = 4 << 20  # decompressed bytes per block handed from the decompressing thread to the reader


def stream_errors() -> Tuple[Type[BaseException], ...]:
    """What a truncated or corrupted stream raises (zstandard's error when it is installed: the target of a
    ship runs this code on a bare python3, where only gzip streams arrive)."""
    found: Tuple[Type[BaseException], ...] = (tarstream.TarError, EOFError, zlib.error, gzip.BadGzipFile)
    try:
        import zstandard
    except ImportError:
        return found
    return (*found, zstandard.ZstdError)


class _Rewound(io.RawIOBase):
    """A stream (a pipe) with its first bytes, already read to sniff the compression, put back."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self.head, self.raw = head, raw

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.raw.read(len(buf))
        buf[:len(data)] = data
        return len(data)


def decompressed_blocks(raw: BinaryIO, bundle: Path) -> Iterator[bytes]:
    """The decompressed stream in blocks of up to READ_BLOCK bytes (RAW a file or a pipe)."""
    magic = raw.read(4)
    if raw.seekable():
        raw.seek(0)
    else:
        raw = cast(BinaryIO, io.BufferedReader(_Rewound(magic, raw), CHUNK))
    if magic == b"\x28\xb5\x2f\xfd":
        import zstandard  # not needed by a ship's target, which receives gzip

        stream: BinaryIO = zstandard.ZstdDecompressor().stream_reader(raw, read_size=CHUNK, read_across_frames=True,
                                                                       closefd=False)
    elif magic[:2] == b"\x1f\x8b":
        stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    else:
        raise BundleError(f"{bundle}: not a bundle (neither zstd nor gzip)")
    yield from iter(lambda: stream.read(READ_BLOCK), b"")


_END = object()


def in_background(chunks: Iterator[bytes], depth: int = 8) -> Iterator[bytes]:
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
        for item in iter(handoff.get, _END):
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _check_name(bundle: Path, digest: str) -> None:
    found = HASH_IN_NAME.findall(bundle.name)
    if not found:
        raise BundleError(f"{bundle.name}: the name carries no manifest hash")
    if not any(digest.startswith(h) for h in found):
        raise BundleError(f"{bundle.name}: manifest hash {digest[:32]} does not match the bundle's name")


if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # typing.Protocol is 3.8+; a ship's target may run 3.6, where Sink is a plain class


class Sink(Protocol):
    """Where checked members go (deploy's staging); reading without a sink only verifies.

    A sink takes over the sha256 check of the files it is given (so hashing can run beside the
    parsing): it keeps a file only when its bytes match entry["sha256"], and finish() raises the
    first mismatch or write error. read() calls finish() before it returns, so a read that
    returns has verified every file either way.
    """

    def wants(self, sp: StorePath) -> bool: ...
    def directory(self, sp: StorePath, rel: str, mode: int) -> None: ...
    def symlink(self, sp: StorePath, rel: str, target: str) -> None: ...
    def file(self, sp: Optional[StorePath], rel: str, entry: Entry, name: str, tar: tarstream.Reader) -> None:
        """Read the file's entry["size"] bytes from TAR (views, valid until the sink lets them go);
        SP None: verify only, write nothing."""
    def done(self, sp: StorePath) -> None: ...
    def finish(self) -> None: ...


_KIND = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device", tarfile.FIFOTYPE: "fifo",
         tarfile.CONTTYPE: "contiguous file", tarfile.GNUTYPE_SPARSE: "sparse file"}
_ENTRY_TYPE = {tarstream.REG: "file", tarstream.DIR: "dir", tarstream.SYM: "link"}


class KeyFinder:
    """Which store path a member belongs to: members come grouped by store path, so the current one is
    tried first, then each '/'-prefix of the name (store paths never nest)."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = set(keys)
        self.current, self.prefix = "", "\0"

    def find(self, name: str) -> Optional[Tuple[str, str]]:
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


def _refuse_unsafe(member: tarstream.Member, root: str, keys: KeyFinder) -> None:
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


class Checker:
    """Each member of the stream against the manifest, in order: known, of the listed type, mode, size
    and link target, once, and whole store paths one after the other, each starting with its directory.
    check() returns the manifest entry a member matched; end() refuses what never came."""

    def __init__(self, manifest: Manifest, sink: Optional[Sink]) -> None:
        self.root, self.sink = manifest["root"], sink
        self.paths = {sp["key"]: sp for sp in manifest["paths"]}
        self.keys = KeyFinder(self.paths)
        self.expected = {sp["key"]: {e["path"]: e for e in sp["files"]} for sp in manifest["paths"]}
        self.seen: Dict[str, Set[str]] = {k: set() for k in self.paths}
        self.current: Optional[str] = None
        self.sp: Optional[StorePath] = None
        self.entries: Dict[str, Entry] = {}
        self.done: Set[str] = set()
        self.writing = False  # the sink writes the current store path

    def _start(self, member: tarstream.Member, key: str, rel: str) -> None:
        if rel and rel not in self.expected[key]:  # the same refusals, in the same order, as within a store path
            raise BundleError(f"member {member.name}: not in the manifest")
        if rel in self.seen[key]:
            raise BundleError(f"member {member.name}: appears twice")
        if self.current is not None:
            self._finish(self.current)
        if self.seen[key]:
            raise BundleError(f"member {member.name}: store path {key} is split in the archive")
        if rel:
            raise BundleError(f"member {member.name}: store path {key} does not start with its directory")
        self.current, self.sp, self.entries, self.done = key, self.paths[key], self.expected[key], self.seen[key]
        self.writing = bool(self.sink and self.sink.wants(self.sp))

    def _finish(self, key: str) -> None:
        missing = sorted(self.expected[key].keys() - self.seen[key] - {""})
        if "" not in self.seen[key] or missing:
            raise BundleError(f"{key}/{missing[0] if missing else ''}: in the manifest, missing from the archive")
        if self.sink and self.writing:
            self.sink.done(self.paths[key])

    def check(self, member: tarstream.Member) -> Tuple[str, str, Entry]:
        """(kind, path in the store path, manifest entry) of MEMBER, or a refusal."""
        _refuse_unsafe(member, self.root, self.keys)
        where = self.keys.find(member.name)
        if where is None:
            raise BundleError(f"member {member.name}: not in the manifest")
        key, rel = where
        if key != self.current:
            self._start(member, key, rel)
        entry: Optional[Entry] = self.entries.get(rel) if rel else {"path": "", "type": "dir",
                                                                  "mode": self.paths[key]["mode"]}
        if entry is None:
            raise BundleError(f"member {member.name}: not in the manifest")
        if rel in self.done:
            raise BundleError(f"member {member.name}: appears twice")
        self.done.add(rel)
        kind = _ENTRY_TYPE[member.type]
        if kind != entry["type"]:
            raise BundleError(f"member {member.name}: a {kind} in the archive, a {entry['type']} in the manifest")
        if kind == "link":
            if member.linkname != entry["target"]:
                raise BundleError(f"member {member.name}: symlink target differs from the manifest")
        elif member.mode != entry["mode"]:
            raise BundleError(f"member {member.name}: mode {member.mode:o} differs from the manifest")
        elif kind == "file" and member.size != entry["size"]:
            raise BundleError(f"member {member.name}: size {member.size} differs from the manifest")
        return kind, rel, entry

    def end(self) -> None:
        if self.current is not None:
            self._finish(self.current)
        for key in self.paths:
            if not self.seen[key]:
                raise BundleError(f"{key}: in the manifest, missing from the archive")


def read(bundle: Path, sink: Optional[Sink] = None, *, manifest_only: bool = False,
         on_file: Optional[Callable[[int], None]] = None,
         known: Optional[Tuple[Manifest, str]] = None) -> Tuple[Manifest, str]:
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
    return read_from(raw, bundle, sink, manifest_only=manifest_only, on_file=on_file, known=known)


def read_from(raw: BinaryIO, bundle: Path, sink: Optional[Sink] = None, *, manifest_only: bool = False,
              on_file: Optional[Callable[[int], None]] = None,
              known: Optional[Tuple[Manifest, str]] = None) -> Tuple[Manifest, str]:
    """read() of the bundle named BUNDLE from RAW, a file or a pipe (read once, front to back), closed after."""
    blocks = in_background(decompressed_blocks(raw, bundle)) if not manifest_only else decompressed_blocks(raw, bundle)
    try:
        with raw:
            try:
                return _read(bundle, tarstream.Reader(blocks), sink, manifest_only, on_file, known)
            finally:
                blocks.close()  # type: ignore[attr-defined]
    except stream_errors() as err:
        raise BundleError(f"{bundle.name}: truncated or corrupted ({err})") from None
    except OSError as err:
        if err.errno is None:
            raise BundleError(f"{bundle.name}: truncated or corrupted ({err})") from None
        raise


def read_manifest(bundle: Path, tar: tarstream.Reader, first: Optional[tarstream.Member],
              known: Optional[Tuple[Manifest, str]]) -> Tuple[Manifest, str]:
    """The first member, the manifest: its size bounded before it is read, its hash the bundle's name."""
    if first is None or first.name != MANIFEST_NAME or first.type != tarstream.REG:
        raise BundleError(f"{bundle.name}: first member is not {MANIFEST_NAME}")
    if first.size > MANIFEST_MAX:  # declared sizes are checked before anything is read into memory
        raise BundleError(f"{bundle.name}: {MANIFEST_NAME} declares {first.size} bytes, over the limit of "
                          f"{MANIFEST_MAX >> 20} MiB")
    data = b"".join(tar.data(first.size))
    digest = hashlib.sha256(data).hexdigest()
    _check_name(bundle, digest)
    if known is not None and known[1] == digest:
        return known[0], digest
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise BundleError(f"{bundle.name}: manifest is not JSON ({err})") from None
    check(manifest)
    return manifest, digest


def _read(bundle: Path, tar: tarstream.Reader, sink: Optional[Sink], manifest_only: bool,
          on_file: Optional[Callable[[int], None]], known: Optional[Tuple[Manifest, str]]) -> Tuple[Manifest, str]:
    members = iter(tar)
    manifest, digest = read_manifest(bundle, tar, next(members, None), known)
    if manifest_only:
        return manifest, digest
    read_members(tar, manifest, sink, on_file)
    return manifest, digest


def read_members(tar: tarstream.Reader, manifest: Manifest, sink: Optional[Sink],
                 on_file: Optional[Callable[[int], None]] = None) -> None:
    """The members of TAR (after the manifest, or a ship's stream of only some store paths: MANIFEST
    then lists just those), each checked against MANIFEST and handed to SINK; see read()."""
    checker = Checker(manifest, sink)
    check_member = checker.check
    for member in tar:  # continues after what was read (the manifest)
        kind, rel, entry = check_member(member)
        if kind == "file":
            if sink is not None:
                sink.file(checker.sp if checker.writing else None, rel, entry, member.name, tar)
            else:
                check_digest(member.name, tar.pieces(member.size), entry["sha256"])
            if on_file:
                on_file(entry["size"])
        elif checker.writing:
            if kind == "dir":
                sink.directory(checker.sp, rel, entry["mode"])  # type: ignore[union-attr, arg-type]
            else:
                sink.symlink(checker.sp, rel, entry["target"])  # type: ignore[union-attr, arg-type]
    checker.end()
    if sink is not None:
        sink.finish()
