"""A lean streaming reader for the tar stream inside a bundle (ustar headers, PAX for long names and sizes).

Why not tarfile: in stream mode it spends tens of microseconds of Python per member (TarInfo objects,
checksum loops, a copy of every byte through its buffers), which on 50,000 members is seconds. Here a
header is one struct unpack, and file data comes out as memoryviews of the decompressed blocks, without
a copy. The reader only parses; it decides nothing about safety except what makes a stream unreadable
(bad checksum, truncation). A PAX header ('x') is applied to the next member (path, linkpath, size; its
keys are listed, so GNU sparse files can be refused); every other type comes out as its raw type byte,
so the caller refuses devices, fifos, hard links, global PAX headers or GNU long names by name.
"""

import struct
import zlib
from typing import Dict, FrozenSet, Iterator, List, NamedTuple

BLOCK = 512
REG, AREG, LNK, SYM, DIR, PAX = b"0", b"\0", b"1", b"2", b"5", b"x"
POSIX_MAGIC = b"ustar\x0000"
PAX_MAX = 1 << 20  # a PAX header is read into memory: a long path takes a few hundred bytes
# name mode uid gid size mtime chksum type linkname magic+version uname gname devmajor devminor prefix
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")
_ZERO = bytes(BLOCK)
_NO_DATA = (LNK, SYM, b"3", b"4", DIR, b"6")
_NO_KEYS: FrozenSet[str] = frozenset()


class TarError(Exception):
    """The stream is not a readable tar (truncated, corrupted header, malformed PAX record)."""


class Member(NamedTuple):  # not a dataclass: a ship's target reads the stream on Python 3.6
    name: str
    type: bytes  # the raw type byte; REG for both b"0" and b"\0"
    mode: int  # permission bits as stored, setuid/setgid/sticky included
    size: int
    linkname: str
    pax_keys: FrozenSet[str]  # keys of the PAX header that applied, so callers can refuse e.g. GNU.sparse.*


def _number(field: bytes, what: str) -> int:
    """An octal field (up to a NUL, spaces allowed around), or GNU base-256 for large positive values."""
    if field[0] == 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.partition(b"\0")[0]
    try:
        return int(text, 8)  # int() allows the surrounding spaces tar writers use
    except ValueError:
        if not text.strip():
            return 0
        raise TarError(f"bad {what} field {field!r} in a tar header") from None


def _checksum_ok(header: memoryview, stored: int) -> bool:
    """The header checksum (the sum of its bytes, the checksum field counted as spaces), compared modulo
    65521 through zlib.adler32, whose low half is 1 + that sum mod 65521: 20 times faster than sum()
    in Python, and as good at catching damage (the real protection is the sha256 of every file and
    the compressor's checksum)."""
    low = zlib.adler32(header) & 0xFFFF
    return (stored - (low - 1) + sum(header[148:156]) - 8 * 32) % 65521 == 0


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> Dict[str, str]:
    """PAX extended header records: '<length> <key>=<value>\\n', length counting the whole record."""
    out: Dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos:].strip(b"\0") == b"":
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        record = data[space + 1:pos + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise TarError("malformed PAX record")
        key, value = record[:-1].split(b"=", 1)
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class Reader:
    """Members of a tar stream given as an iterator of byte blocks (any sizes, e.g. decompressor output).

    Use: `for member in reader:` then, for a file, `reader.data(member.size)` yields memoryviews of its
    bytes; whatever the caller does not read is skipped before the next header. Needs the end-of-archive
    zero block: a stream that stops before it is truncated.
    """

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._buf = memoryview(b"")
        self._pos = 0
        self._unread = 0  # data (plus padding) of the last member the caller has not consumed

    def _next_block(self) -> bool:
        for block in self._blocks:
            if block:
                self._buf, self._pos = memoryview(block), 0
                return True
        return False

    def _take(self, n: int) -> memoryview:
        """Exactly N contiguous bytes (copied only when they straddle two blocks)."""
        if self._pos + n <= len(self._buf):
            view = self._buf[self._pos:self._pos + n]
            self._pos += n
            return view
        parts = bytearray(self._buf[self._pos:])
        while len(parts) < n:
            if not self._next_block():
                raise TarError("truncated (the stream ends inside a header)")
            want = min(n - len(parts), len(self._buf))
            parts += self._buf[:want]
            self._pos = want
        return memoryview(bytes(parts))

    def _skip(self, n: int) -> None:
        while n:
            if self._pos == len(self._buf) and not self._next_block():
                raise TarError("truncated (the stream ends inside a member)")
            step = min(n, len(self._buf) - self._pos)
            self._pos += step
            n -= step

    def data(self, size: int) -> Iterator[memoryview]:
        """The next SIZE bytes of the current member as views into the stream's blocks (no copy)."""
        if size > self._unread:
            raise ValueError("reading past the member")
        while size:
            if self._pos == len(self._buf) and not self._next_block():
                raise TarError("truncated (the stream ends inside a file)")
            step = min(size, len(self._buf) - self._pos)
            view = self._buf[self._pos:self._pos + step]
            self._pos += step
            self._unread -= step
            size -= step
            yield view

    def pieces(self, size: int) -> List[memoryview]:
        """data(SIZE) as a list; one view without a generator when the bytes lie in the current block."""
        pos = self._pos
        if 0 < size <= self._unread and pos + size <= len(self._buf):
            self._pos, self._unread = pos + size, self._unread - size
            return [self._buf[pos:pos + size]]
        return list(self.data(size))

    def __iter__(self) -> Iterator[Member]:
        pax: Dict[str, str] = {}
        while True:
            self._skip(self._unread)
            self._unread = 0
            if self._pos == len(self._buf) and not self._next_block():
                raise TarError("truncated (no end-of-archive block)")
            header = self._take(BLOCK)
            if header == _ZERO:
                self.drain()
                return
            fields = _HEADER.unpack(header)
            if not _checksum_ok(header, _number(fields[6], "checksum")):
                raise TarError("corrupted (bad tar header checksum)")
            kind = fields[7]
            size = _number(fields[4], "size")
            if kind == PAX:
                if size > PAX_MAX:
                    raise TarError(f"PAX header of {size} bytes (at most {PAX_MAX})")
                self._unread = size + (-size % BLOCK)
                record = b"".join(self.data(size))
                pax = _pax_records(record)
                continue
            name = _text(fields[0])
            if fields[9] == POSIX_MAGIC and fields[14][:1] != b"\0":
                name = _text(fields[14]) + "/" + name
            linkname = _text(fields[8]) if fields[8][:1] != b"\0" else ""
            if pax:
                name = pax.get("path", name)
                linkname = pax.get("linkpath", linkname)
                if "size" in pax:
                    size = int(pax["size"]) if pax["size"].isdigit() else -1
                    if size < 0:
                        raise TarError("malformed PAX size")
            if kind == AREG:
                kind = REG
            if kind == DIR:
                name = name.rstrip("/") or name
            has_data = kind not in _NO_DATA  # as tarfile: no data after links, directories, devices, fifos
            member = Member(name, kind, _number(fields[1], "mode"), size if has_data else 0, linkname,
                            frozenset(pax) if pax else _NO_KEYS)
            if pax:
                pax = {}
            self._unread = size + (-size % BLOCK) if has_data else 0
            yield member

    def drain(self) -> None:
        """Read what follows the end-of-archive block, so the decompressor checks the stream to its end."""
        self._buf, self._pos = memoryview(b""), 0
        for _ in self._blocks:
            pass
