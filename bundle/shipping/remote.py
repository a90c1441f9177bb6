"""The target's side of a ship (ship.py), run by a bare python3 (3.6 or newer, standard library only).

ship.py starts `python3 -c ...` over ssh and feeds it, on stdin, this package's sources (loaded from
memory: nothing is installed on the target), then a header line and the bundle's manifest. The target
redeploys exactly as a local redeploy does (deploying/redeploy.py: its lock, refusals, staging and atomic
swap), with this Source: once it holds the lock and has planned against its own .bundle/state.json,
it answers with the store paths it needs, and reads them as a gzip'd tar stream from stdin, every
member checked against the manifest and every sha256 matched. A sender that stops mid-stream ends
the stream early: the read fails, staging is dropped, and the deployment is as it was.
Replies are JSON lines on stdout: {"todo": [...]}, then {"result": {...}} or {"error": "..."}.

This module and all it imports, with the __init__ of every package on the way (shipping/closure.py finds
them), are written for Python 3.6, RHEL 8's system python3: typing's List and Optional, NamedTuples, no
dataclasses or walrus (tests/bundle/test_closure.py compiles and runs them there).
"""

import hashlib
import json
import os
import sys
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, List, Optional, Tuple

from bundle.deploying.plan import Plan
from bundle.deploying.redeploy import redeploy
from bundle.deploying.source import Source
from bundle.errors import BundleError
from bundle.format.manifest import check
from bundle.format.records import Manifest, StorePath, of_type
from bundle.reading import reader, tarstream

MIN_PYTHON = (3, 6)  # what ship.py's loader asks of the target's python3
BLOCK = 1 << 20


def send(out: BinaryIO, message: dict) -> None:
    out.write(json.dumps(message).encode() + b"\n")
    out.flush()


def gunzip(inp: BinaryIO) -> Iterator[bytes]:
    """The decompressed blocks of the gzip stream on INP (ends with the gzip member, or early at EOF)."""
    d = zlib.decompressobj(31)
    while not d.eof:
        chunk = inp.read1(BLOCK)  # type: ignore[attr-defined]
        if not chunk:
            return
        while chunk:
            yield d.decompress(chunk, 4 * BLOCK)
            chunk = d.unconsumed_tail


class ShipSource(Source):
    def __init__(self, name: str, manifest: bytes, digest: str, inp: BinaryIO, out: BinaryIO) -> None:
        self.name, self.data, self.digest, self.inp, self.out = name, manifest, digest, inp, out
        self.parsed: Optional[Manifest] = None

    def manifest(self) -> Tuple[Manifest, str]:
        if hashlib.sha256(self.data).hexdigest() != self.digest:
            raise BundleError(f"{self.name}: the manifest sent does not hash to {self.digest[:32]}")
        try:
            self.parsed = json.loads(self.data)
        except ValueError as err:
            raise BundleError(f"{self.name}: manifest is not JSON ({err})") from None
        check(self.parsed)
        return self.parsed, self.digest

    def planned(self, steps: Plan, target: Path) -> None:
        send(self.out, {"todo": [sp["key"] for sp in steps.todo], "target": str(target)})

    def stage(self, todo: List[StorePath], sink: reader.Sink, on_file: Optional[Callable[[int], None]]) -> None:
        assert self.parsed is not None
        try:
            reader.read_members(tarstream.Reader(gunzip(self.inp)), {**self.parsed, "paths": todo}, sink, on_file)
        except reader.stream_errors() as err:
            raise BundleError(f"the stream from the sender ended early or is corrupted ({err}); "
                              "the deployment is as it was, ship again to finish") from None


HEADER = {"name": str, "digest": str, "prefix": str, "relocate": bool, "wait": bool, "prune": bool,
          "manifest_size": int}


def check_header(header: object) -> dict:
    """The sender's header line, every field of its type (bool is not a size), the manifest's size bounded."""
    if not isinstance(header, dict):
        raise BundleError("the sender's request is not an object")
    for field, kind in HEADER.items():
        value = header.get(field)
        if not of_type(value, kind):
            raise BundleError(f"the sender's request: field {field!r} should be {kind.__name__}")
    if not 0 <= header["manifest_size"] <= reader.MANIFEST_MAX:
        raise BundleError(f"the sender's request: manifest_size {header['manifest_size']} out of range")
    return header


def main() -> int:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    try:
        header = check_header(json.loads(inp.readline()))
        manifest = zlib.decompress(inp.read(header["manifest_size"]))
        source = ShipSource(header["name"], manifest, header["digest"], inp, out)
        result = redeploy(source, Path(header["prefix"]), relocate=header["relocate"], wait=header["wait"],
                                 prune=header["prune"])
    except BundleError as err:
        send(out, {"error": str(err)})
        return 1
    except OSError as err:
        where = f": {os.fsdecode(err.filename)}" if err.filename else ""
        send(out, {"error": f"{err.strerror or err}{where}"})
        return 1
    except (ValueError, KeyError, zlib.error) as err:
        send(out, {"error": f"the sender's request is malformed ({err})"})
        return 1
    send(out, {"result": result.as_dict()})
    return 0
