"""The few filesystem moves a redeploy makes, each safe on its own: an atomic exchange, an atomic
write that leaves no temporary file behind, a removal that copes with read-only directories,
directories made with a list of what was made (so a refused run can take them back)."""

import ctypes
import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, List

RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (Linux renameat2); falls back to a two-step swap elsewhere."""
    fn = getattr(_libc, "renameat2", None)
    if fn is not None:
        at_fdcwd = -100
        if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(b))
    aside = b.with_name(b.name + ".old-" + uuid.uuid4().hex[:8])
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def rmtree(path: Path) -> None:
    """Remove PATH (file, link or tree), read-only directories included; nothing when it is absent."""
    def writable(func: Callable, p: str, _exc: object) -> None:
        os.chmod(os.path.dirname(p), 0o700)
        func(p)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=writable)


TMP_SUFFIX = ".tmp"


def discard(path: Path) -> None:
    """Remove the file PATH when it is there (Path.unlink's missing_ok is 3.8+; a ship's target may run 3.6)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_atomic(path: Path, data: bytes) -> None:
    """PATH holds DATA or its old contents, never a part; the temporary file goes on any failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def write_if_changed(path: Path, data: bytes) -> bool:
    """write_atomic unless PATH already holds DATA; True when written."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True


def make_dirs(path: Path) -> List[Path]:
    """mkdir -p PATH; returns the directories it made, outermost first (for undo())."""
    missing: List[Path] = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        os.mkdir(d)
    return list(reversed(missing))


def undo(made: List[Path]) -> None:
    """Remove directories MADE by make_dirs, innermost first, as long as they are empty."""
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            continue
