"""The stage step of a redeploy: the bundle's checked members of the store paths to write, put in staging
directories beside each one's final place (recorded, so that the next run removes what a kill left).

Creating tens of thousands of small files is the slow part of a redeploy, and it is kernel time, which
runs without the GIL; so is hashing. So two writer threads hash and create the files while the reading
thread parses and hands them over, as views of the decompressed blocks (no copy), in batches.
A small file is created only once its sha256 matched; a large one streams to disk while it is hashed
and a mismatch is raised when it ends (staging is then dropped: the target is never touched before
every file matched). Files get their final mode at creation (a chmod only when the umask is in the
way), and nothing is fsynced: a kill leaves the page cache intact, and the atomicity of a redeploy
comes from the renames. Directories are made by the writers first, from the manifest, and a store
path's files and symlinks are handed over only once its directories exist. The first failure
(mismatch, disk full) is raised in the reading thread by the next hand-over or by finish().
"""

import hashlib
import os
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from bundle.deploying.fsops import discard, make_dirs, rmtree, write_atomic
from bundle.deploying.source import Source
from bundle.deploying.state import load_json, meta_dir
from bundle.errors import BundleError
from bundle.format.manifest import canonical, check_digest
from bundle.format.records import Entry, StorePath
from bundle.format.reserved import STAGING_PREFIX
from bundle.reading.tarstream import Reader

WRITERS = 2  # one per core on the 2-core machines this is measured on; more only adds lock contention
_FIFO: Any = getattr(queue, "SimpleQueue", queue.Queue)  # SimpleQueue is 3.7+ (and faster); a ship's target may run 3.6
BUDGET = 64 << 20  # bytes queued for the writers at most: memory stays flat whatever the bundle's size
SMALL = 1 << 20  # a file up to this size is handed over whole (in a batch); a larger one streams
BATCH = 256 << 10  # small files are handed to a writer in batches of about this many bytes (or BATCH_FILES)
BATCH_FILES = 64
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
STAGING_LIST = "staging.json"  # staging directories in use, so the next run finds those a kill left


def umask() -> int:
    """The process umask, read without changing it where /proc allows (threads may be running)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_all(fd: int, pieces: Sequence[memoryview]) -> None:
    for piece in pieces:
        while piece:
            piece = piece[os.write(fd, piece):]


class Writers:
    """WRITERS threads, each with its own FIFO: a large file's pieces go to one writer and stay in order.

    Jobs are tuples ending with their weight (bytes + entries), which bounds what is queued:
    ("dirs", [(path, mode), ...], w) makes directories, parents first; ("batch", [item, ...], w) makes
    symlinks (path, target) and small files (path, mode, sha256, name, pieces), each created only when
    its bytes match (path None: hash only); ("open", token, path, mode, w), ("write", token, pieces, w)
    and ("close", token, mode, sha256, name, w) stream a large one. After a failure the writers skip
    what is queued; the error is raised by the next submit() or by drain().
    """

    def __init__(self, threads: int = WRITERS, budget: int = BUDGET) -> None:
        self.mask = umask()
        self.budget = budget
        self.error: Optional[BaseException] = None
        self.stopping = False
        self.queues: List[queue.SimpleQueue] = [_FIFO() for _ in range(threads)]
        self.queued = [0] * threads  # weight handed to each writer (written by the reading thread only)
        self.done = [0] * threads  # weight each writer finished (written by that writer only)
        self.threads = [threading.Thread(target=self._run, args=(i,), name=f"bundle-writer-{i}", daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, i: int) -> None:
        jobs: queue.SimpleQueue = self.queues[i]
        streams: Dict[int, Tuple[Optional[int], hashlib._Hash]] = {}
        for job in iter(jobs.get, None):
            if self.error is None and not self.stopping:
                try:
                    self._do(job, streams)
                except BaseException as err:  # noqa: B036 - raised in the reading thread
                    self.error = self.error or err
            self.done[i] += job[-1]
        for fd, _ in streams.values():
            if fd is not None:
                os.close(fd)

    def _do(self, job: tuple, streams: Dict[int, Tuple[Optional[int], "hashlib._Hash"]]) -> None:
        op = job[0]
        if op == "batch":  # the hot loop: once per small file, so written out in full
            mask, sha256, write = self.mask, hashlib.sha256, os.write
            for item in job[1]:
                if len(item) == 2:
                    os.symlink(item[1], item[0])
                    continue
                path, mode, sha, name, pieces = item
                if len(pieces) == 1:
                    if sha256(pieces[0]).hexdigest() != sha:
                        raise BundleError(f"member {name}: sha256 mismatch")
                else:
                    check_digest(name, pieces, sha)
                if path is None:
                    continue
                fd = os.open(path, _CREATE, mode)
                try:
                    for piece in pieces:
                        written = write(fd, piece)
                        if written < len(piece):  # a short write (a signal, a nearly full disk): the rest
                            _write_all(fd, [piece[written:]])
                    if mode & mask:
                        os.fchmod(fd, mode)
                finally:
                    os.close(fd)
        elif op == "dirs":
            for path, mode in job[1]:
                os.mkdir(path, mode)
        elif op == "write":
            out, digest = streams[job[1]]
            for piece in job[2]:
                digest.update(piece)
            if out is not None:
                _write_all(out, job[2])
        elif op == "open":
            streams[job[1]] = (os.open(job[2], _CREATE, job[3]) if job[2] is not None else None, hashlib.sha256())
        else:
            _, token, mode, sha, name, _ = job
            out, digest = streams.pop(token)
            if out is not None:
                try:
                    if mode & self.mask:
                        os.fchmod(out, mode)
                finally:
                    os.close(out)
            if digest.hexdigest() != sha:
                raise BundleError(f"member {name}: sha256 mismatch")

    def least_busy(self) -> int:
        return min(range(len(self.queues)), key=lambda i: self.queued[i] - self.done[i])

    def submit(self, i: int, job: tuple) -> None:
        """Queue JOB for writer I, first waiting while the budget is used up; raises a writer's error."""
        while self.error is None and sum(self.queued) - sum(self.done) > self.budget:
            time.sleep(0.0005)
        if self.error is not None:
            raise self.error
        self.queued[i] += job[-1]
        self.queues[i].put(job)

    def wait(self, i: int, mark: int) -> None:
        """Wait until writer I has done MARK weight (everything queued to it before MARK was taken)."""
        while self.error is None and self.done[i] < mark:
            time.sleep(0.0002)
        if self.error is not None:
            raise self.error

    def drain(self) -> None:
        """Wait until every queued job is done; raises the first error."""
        for i in range(len(self.queues)):
            self.wait(i, self.queued[i])

    def close(self) -> None:
        """Stop the writers, skipping whatever is still queued, and wait for them."""
        self.stopping = True
        for q in self.queues:
            q.put(None)
        for t in self.threads:
            t.join()


class Staging:
    """The sink (see reader.Sink) that writes the store paths to deploy into their staging directories.

    start() queues the directories of every store path to write, from the manifest (already checked,
    so no path leaves its store path), ahead of the files: the writers make them while the reader
    starts, and a store path's files are handed over once its directories exist. Directories are
    created writable and get their final mode in finish(), deepest first, when the umask or a
    read-only mode is in the way.
    """

    def __init__(self, staged: Dict[str, Path], todo: List[StorePath]) -> None:
        self.todo = {sp["key"]: sp for sp in todo}
        self.staged = staged  # store path -> where it is staged (its parent directory exists)
        self.bases = {key: str(path) for key, path in self.staged.items()}
        self.writers = Writers()
        self.dirs_ready: Dict[str, Tuple[int, int]] = {}  # store path -> (writer, weight done when its dirs exist)
        self.chmods: List[Tuple[str, int]] = []
        self.batch: List[tuple] = []
        self.batch_weight = 0
        self.streams = 0

    def start(self) -> None:
        """Queue the directories of every store path to write (the staging directory must exist)."""
        mask = self.writers.mask
        for key, sp in self.todo.items():
            dirs = [(str(self.staged[key]), sp["mode"])]
            dirs += [(self._path(sp, e["path"]), e["mode"]) for e in sp["files"] if e["type"] == "dir"]
            self.chmods += [(path, mode) for path, mode in dirs if (mode | 0o700) & ~mask != mode]
            writer = self.writers.least_busy()
            self.writers.submit(writer, ("dirs", [(path, mode | 0o700) for path, mode in dirs], len(dirs)))
            self.dirs_ready[key] = (writer, self.writers.queued[writer])

    def _path(self, sp: StorePath, rel: str) -> str:
        base = self.bases[sp["key"]]
        return f"{base}/{rel}" if rel else base

    def wants(self, sp: StorePath) -> bool:
        """True for a store path to write, once its directories exist (made by start())."""
        if sp["key"] not in self.todo:
            return False
        writer, mark = self.dirs_ready[sp["key"]]
        self.writers.wait(writer, mark)
        return True

    def directory(self, sp: StorePath, rel: str, mode: int) -> None:
        """Made by start() from the manifest; the reader has checked the member against it."""

    def symlink(self, sp: StorePath, rel: str, target: str) -> None:
        self._add((self._path(sp, rel), target), 1)

    def file(self, sp: Optional[StorePath], rel: str, entry: Entry, name: str, tar: Reader) -> None:
        path = self._path(sp, rel) if sp is not None else None
        if entry["size"] <= SMALL:
            self._add((path, entry["mode"], entry["sha256"], name, tar.pieces(entry["size"])), entry["size"] + 1)
            return
        writer, self.streams = self.writers.least_busy(), self.streams + 1
        self.writers.submit(writer, ("open", self.streams, path, entry["mode"], 1))
        for piece in tar.data(entry["size"]):
            self.writers.submit(writer, ("write", self.streams, (piece,), len(piece)))
        self.writers.submit(writer, ("close", self.streams, entry["mode"], entry["sha256"], name, 1))

    def _add(self, item: tuple, weight: int) -> None:
        self.batch.append(item)
        self.batch_weight += weight
        if self.batch_weight >= BATCH or len(self.batch) >= BATCH_FILES:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            self.writers.submit(self.writers.least_busy(), ("batch", self.batch, self.batch_weight))
            self.batch, self.batch_weight = [], 0

    def done(self, sp: StorePath) -> None:
        """Nothing to do when a store path is complete: relocation is a step of its own (redeploy.py)."""

    def finish(self) -> None:
        """Wait for every file to be verified and written (raising the first error), then set directory modes."""
        self._flush()
        self.writers.drain()
        for path, mode in reversed(self.chmods):
            os.chmod(path, mode)
        self.chmods = []

    def close(self) -> None:
        self.writers.close()


def staging_dirs(target: Path, keys: List[str]) -> Dict[str, Path]:
    """One staging directory beside the final place of each store path (per parent directory)."""
    token = f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return {key: target / os.path.dirname(key) / token for key in keys}


def record_staging(meta: Path, dirs: Set[Path]) -> None:
    write_atomic(meta / STAGING_LIST, canonical({"dirs": sorted(str(d) for d in dirs)}))


def recorded_staging(meta: Path) -> List[Path]:
    return [Path(str(d)) for d in load_json(meta / STAGING_LIST).get("dirs", [])]


def drop_staging(meta: Path) -> None:
    """Remove the staging directories this run recorded, and their list."""
    for d in recorded_staging(meta):
        rmtree(d)
    discard(meta / STAGING_LIST)


def clean_leftovers(target: Path, places: List[str]) -> None:
    """Staging directories and temporary files a killed run left: those it recorded, and any in the
    directories that hold this bundle's store paths."""
    meta = meta_dir(target)
    recorded = [str(d) for d in recorded_staging(meta)]
    for parent in {target / os.path.dirname(key) for key in places}:
        try:
            recorded += [str(p) for p in parent.glob(STAGING_PREFIX + "*")]
        except OSError:
            pass
    for path in set(recorded):
        p = Path(path)
        if p.name.startswith(STAGING_PREFIX) and str(p).startswith(str(target) + "/"):
            rmtree(p)
    for tmp in meta.glob(".*.tmp"):
        discard(tmp)
    discard(meta / STAGING_LIST)


def stage(source: Source, target: Path, todo: List[StorePath], places: Dict[str, str],
          on_file: Optional[Callable[[int], None]], made: List[Path]) -> Dict[str, Path]:
    """Read the bundle into staging beside each store path's final place; returns where each one is staged.
    Every staged byte is checked on its way in (type, mode, size, link target, sha256) and every
    manifest entry seen, so the staged tree is not walked again."""
    where = staging_dirs(target, [places[sp["key"]] for sp in todo])
    record_staging(meta_dir(target), set(where.values()))
    staged = {sp["key"]: where[places[sp["key"]]] / str(i) for i, sp in enumerate(todo)}
    for d in sorted(set(where.values())):
        made += make_dirs(d.parent)
        os.mkdir(d)
    sink = Staging(staged, todo)
    try:
        sink.start()
        source.stage(todo, sink, on_file)
    finally:
        sink.close()
    return staged
