"""Ship a bundle to another machine over ssh, sending only the store paths the target lacks.

One ssh session: `python3 -c <loader>` on the target reads the bundle package's sources from stdin (loaded
from memory, nothing installed; remote.py says what the target does), then the manifest. The target
takes its lock, plans against its own .bundle/state.json and answers with the store paths it needs;
only those are read out of the bundle here and sent, as a gzip'd tar stream, into the same checks,
staging and atomic swap as a local redeploy. The target needs ssh and python3 (3.6 or newer: RHEL 8's;
--remote-python names another); an older Python there is refused in one line naming its version.
The ssh command is `ssh`, or BUNDLE_SSH, or --ssh (split like a shell would, as rsync's RSYNC_RSH).
Pulling, the other direction: `ssh HOST cat PATH` read once as the bundle's stream (PullSource).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from bundle.deploying.plan import Plan
from bundle.deploying.source import Source
from bundle.errors import BundleError
from bundle.format.manifest import canonical
from bundle.format.records import Manifest, StorePath
from bundle.packing import writer
from bundle.reading import reader, tarstream
from bundle.shipping import remote
from bundle.shipping.closure import closure

PACKAGE = Path(__file__).resolve().parent.parent  # bundle/: what the closure is read from
# The bootstrap and the loader's first lines parse and run on Python 2 too, so that an old python3 (or a
# python that is 2) is refused by the version check below, not by a traceback.
BOOTSTRAP = "import sys;i=getattr(sys.stdin,\"buffer\",sys.stdin);exec(i.read(int(i.readline())))"
TOO_OLD = 3  # the loader's exit status when the target's Python is older than remote.MIN_PYTHON
LOADER = """import sys
if sys.version_info < @MIN@:
    sys.stderr.write("bundle-ship: Python %d.%d.%d\\n" % tuple(sys.version_info[:3]))
    sys.exit(@TOO_OLD@)
import importlib.abc, importlib.util, json, zlib
SRC = json.loads(zlib.decompress(sys.stdin.buffer.read(@SIZE@)))
PACKAGES = {m.rpartition(".")[0] for m in SRC}
class Loader(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name in SRC:
            return importlib.util.spec_from_loader(name, self, is_package=name in PACKAGES)
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        exec(compile(SRC[module.__name__], "<shipped>/" + module.__name__, "exec"), module.__dict__)
sys.meta_path.insert(0, Loader())
from bundle.shipping import remote
sys.exit(remote.main())
"""
ENTRY = "bundle.shipping.remote"  # the target runs remote.main(): what it imports, and nothing else, is shipped
_TOO_OLD = re.compile(r"^bundle-ship: Python (\d+\.\d+\.\d+)$", re.M)
_TYPES = {tarstream.REG: tarfile.REGTYPE, tarstream.DIR: tarfile.DIRTYPE, tarstream.SYM: tarfile.SYMTYPE}
_DEST = re.compile(r"^(?:([^@/:\s]+)@)?([^@/:\s]+):(/.*)$")


def parse_dest(dest: str) -> tuple[str, str]:
    """[USER@]HOST:PREFIX -> ([USER@]HOST, PREFIX); PREFIX absolute."""
    match = _DEST.match(dest)
    if not match:
        raise BundleError(f"--to {dest!r}: expected [USER@]HOST:/ABSOLUTE/PREFIX")
    user, host, prefix = match.groups()
    return (f"{user}@{host}" if user else host), prefix


def ssh_command(ssh: str | None) -> list[str]:
    words = shlex.split(ssh or os.environ.get("BUNDLE_SSH") or "ssh")
    if not words:
        raise BundleError("the ssh command (--ssh or BUNDLE_SSH) is empty")
    return words


def remote_command(python: str = "python3") -> str:
    """The command ssh runs on the target: PYTHON reading the loader from stdin."""
    return f"{shlex.quote(python)} -c '{BOOTSTRAP}'"


def loader(size: int) -> str:
    """The loader's text, for sources SIZE bytes long."""
    return (LOADER.replace("@MIN@", repr(remote.MIN_PYTHON)).replace("@TOO_OLD@", str(TOO_OLD))
            .replace("@SIZE@", str(size)))


def code() -> bytes:
    """The loader, then the sources it loads (zlib'd JSON: remote.py's import closure), as the target reads
    them on stdin."""
    blob = zlib.compress(json.dumps(closure(PACKAGE, ENTRY)).encode(), 9)
    text = loader(len(blob)).encode()
    return str(len(text)).encode() + b"\n" + text + blob


def ssh_error(host: str, returncode: int, stderr: str, python: str = "python3") -> str:
    """One line for what went wrong before the target's program answered."""
    last = (stderr.strip().splitlines() or [""])[-1]
    need = ".".join(map(str, remote.MIN_PYTHON))
    old = _TOO_OLD.search(stderr)
    if returncode == TOO_OLD and old:
        return f"{host}: {python} there is Python {old[1]}; a ship's target needs Python {need} or newer"
    if returncode == 127 or f"{python}: command not found" in stderr or f"{python}: not found" in stderr:
        return f"{host}: no {python} there (the target needs ssh and Python {need} or newer; see --remote-python)"
    if "Permission denied" in stderr or "Too many authentication failures" in stderr:
        return f"{host}: authentication refused ({last})"
    if returncode == 255:
        return f"{host}: host unreachable ({last or 'ssh exited 255'})"
    return f"{host}: the target's program stopped (exit {returncode}){': ' + last if last else ''}"


class _Sender:
    """Bytes to ssh's stdin, counted; a gzip stream when compressing."""

    def __init__(self, pipe: IO[bytes], on_sent: Callable[[int], None] | None) -> None:
        self.pipe, self.on_sent, self.sent = pipe, on_sent, 0
        self.zip: Any = None

    def raw(self, data: bytes) -> None:
        self.pipe.write(data)
        self.sent += len(data)
        if self.on_sent:
            self.on_sent(self.sent)

    def write(self, data: bytes | memoryview) -> None:
        if out := self.zip.compress(data):
            self.raw(out)

    def stream(self) -> None:
        self.zip = zlib.compressobj(1, zlib.DEFLATED, 31)

    def end(self) -> None:
        self.raw(self.zip.flush())
        self.pipe.flush()


def send_store_paths(bundle: Path, todo: set[str], out: _Sender, on_file: Callable[[int], None] | None) -> None:
    """The members of the store paths in TODO, read out of BUNDLE (stopping once all were read), as a tar stream."""
    raw = open(bundle, "rb")
    blocks = reader.in_background(reader.decompressed_blocks(raw, bundle))
    try:
        tar = tarstream.Reader(blocks)
        keys, left = reader.KeyFinder(todo), set(todo)
        out.stream()
        for member in tar:
            where = keys.find(member.name)
            if where is None or where[0] not in todo:
                if not left:
                    break
                continue
            left.discard(where[0])
            kind = _TYPES.get(member.type)
            if kind is None:
                raise BundleError(f"member {member.name}: tar member type {member.type!r} refused")
            info = tarfile.TarInfo(member.name)
            info.type, info.mode, info.size, info.linkname = kind, member.mode, member.size, member.linkname
            info.mtime, info.uid, info.gid, info.uname, info.gname = writer.epoch(), 0, 0, "", ""
            try:
                out.write(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
            except ValueError:
                out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            if kind == tarfile.REGTYPE:
                for piece in tar.data(member.size):
                    out.write(piece)
                if member.size % tarfile.BLOCKSIZE:
                    out.write(b"\0" * (tarfile.BLOCKSIZE - member.size % tarfile.BLOCKSIZE))
                if on_file:
                    on_file(member.size)
        out.write(b"\0" * tarfile.RECORDSIZE)
        out.end()
    except reader.stream_errors() as err:
        raise BundleError(f"{bundle.name}: truncated or corrupted ({err})") from None
    finally:
        blocks.close()  # type: ignore[attr-defined]
        raw.close()


def _reply(proc: subprocess.Popen, host: str, stderr: Callable[[], str], python: str) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise BundleError(ssh_error(host, proc.returncode, stderr(), python))
    message = json.loads(line)
    if "error" in message:
        raise BundleError(f"{host}: {message['error']}")
    return message


def request(name: str, digest: str, manifest: Manifest, prefix: str, *, relocate: bool, wait: bool,
            prune: bool) -> bytes:
    """What the target reads before it plans: the code, a header line, the manifest (zlib'd)."""
    packed = zlib.compress(canonical(manifest), 6)
    header = {"name": name, "digest": digest, "prefix": prefix, "relocate": relocate, "wait": wait, "prune": prune,
              "manifest_size": len(packed)}
    return code() + json.dumps(header).encode() + b"\n" + packed


def report(result: dict[str, Any], host: str, sent: int, control: int, paths: list[StorePath]) -> dict[str, Any]:
    """The target's redeploy result with what crossed: bytes in all, of code and manifest, of store paths."""
    return {**result, "host": host, "sent_bytes": sent, "sent_control_bytes": control,
            "sent_data_bytes": sent - control, "sent_paths": sorted(sp["key"] for sp in paths),
            "sent_store_bytes": sum(e.get("size", 0) for sp in paths for e in sp["files"])}


@contextmanager
def _session(ssh: str | None, host: str, python: str) -> Iterator[tuple[subprocess.Popen, Callable[[], str]]]:
    """`ssh HOST python3 -c <reader>`, its stderr collected (for the one line when it fails: the second item
    gives all of it once ssh has ended, not what the drain had read so far); waited for on the way out,
    killed when it has not ended 30 s later."""
    proc = subprocess.Popen([*ssh_command(ssh), host, remote_command(python)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.extend(line.decode(errors="replace")
                                                          for line in proc.stderr or []), daemon=True)
    drain.start()

    def stderr() -> str:
        drain.join(timeout=5)
        return "".join(errors)

    try:
        yield proc, stderr
    finally:
        if proc.poll() is None:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        drain.join(timeout=5)


def _unless_gone(write: Callable[[], None]) -> None:
    """WRITE to the target; when the pipe broke, the target's reply (or ssh's stderr) says why."""
    try:
        write()
    except BrokenPipeError:
        pass


def ship(bundle: Path, dest: str, *, ssh: str | None = None, relocate: bool = False, wait: bool = False,
         prune: bool = False, python: str = "python3", on_sent: Callable[[int], None] | None = None,
         on_plan: Callable[[int, int], None] | None = None,
         on_file: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Ship BUNDLE to DEST ([USER@]HOST:PREFIX), run there by PYTHON; the target's redeploy result, with what
    was sent."""
    host, prefix = parse_dest(dest)
    bundle = Path(bundle)
    manifest, digest = reader.read(bundle, manifest_only=True)
    by_key = {sp["key"]: sp for sp in manifest["paths"]}
    with _session(ssh, host, python) as (proc, stderr):
        assert proc.stdin is not None
        stdin, out = proc.stdin, _Sender(proc.stdin, on_sent)
        first = request(bundle.name, digest, manifest, prefix, relocate=relocate, wait=wait, prune=prune)

        def send_request() -> None:
            out.raw(first)
            stdin.flush()

        _unless_gone(send_request)
        todo = [by_key[k] for k in _reply(proc, host, stderr, python)["todo"] if k in by_key]
        control = out.sent
        if on_plan:
            steps = Plan(todo, [], [], {})
            on_plan(steps.files, steps.bytes)
        if todo:
            _unless_gone(lambda: send_store_paths(bundle, {sp["key"] for sp in todo}, out, on_file))
        _unless_gone(stdin.close)
        result = _reply(proc, host, stderr, python)["result"]
    return report(result, host, out.sent, control, todo)


class PullSource(Source):
    """A bundle on another host, read once as a stream (`ssh HOST cat PATH`): the manifest, then the members."""

    def __init__(self, spec: str, ssh: str | None = None) -> None:
        host, _, path = spec.partition(":")
        self.host, self.name = host, Path(path).name
        self.proc = subprocess.Popen([*ssh_command(ssh), host, f"cat -- {shlex.quote(path)}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        stream = cast(BinaryIO, self.proc.stdout)
        self.blocks = reader.in_background(reader.decompressed_blocks(stream, Path(self.name)))
        self.tar = tarstream.Reader(self.blocks)
        self.parsed: tuple[Manifest, str] | None = None

    def _fail(self, err: BaseException) -> BundleError:
        """The error to raise: ssh's or cat's when they failed (a truncated stream is their symptom), else ERR's."""
        try:
            self.proc.wait(timeout=5)  # the stream ended: ssh or cat is exiting
        except subprocess.TimeoutExpired:
            pass
        self.close()
        stderr = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace").strip()
        if self.proc.returncode and self.proc.returncode != -9 and stderr:
            if self.proc.returncode == 255:
                return BundleError(ssh_error(self.host, 255, stderr))
            return BundleError(f"{self.host}: {stderr.splitlines()[-1]}")
        return err if isinstance(err, BundleError) else BundleError(f"{self.name}: truncated or corrupted ({err})")

    def manifest(self) -> tuple[Manifest, str]:
        try:
            self.parsed = reader.read_manifest(Path(self.name), self.tar, next(iter(self.tar), None), None)
        except BundleError as err:
            raise self._fail(err) from None
        except reader.stream_errors() as err:
            raise self._fail(err) from None
        return self.parsed

    def stage(self, todo: list[StorePath], sink: reader.Sink, on_file: Callable[[int], None] | None) -> None:
        assert self.parsed is not None
        try:
            reader.read_members(self.tar, self.parsed[0], sink, on_file)
        except reader.stream_errors() as err:
            raise self._fail(err) from None

    def close(self) -> None:
        if self.proc.poll() is None:  # the rest of the stream is not needed (or the read failed)
            self.proc.kill()
        self.blocks.close()  # type: ignore[attr-defined]
        self.proc.wait()


def is_remote(spec: str) -> bool:
    """HOST:PATH (not a local file, the host part without '/')."""
    host, sep, _ = spec.partition(":")
    return bool(sep and host and "/" not in host and not os.path.exists(spec))
