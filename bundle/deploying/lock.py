"""One redeploy at a time per target: the lock (TARGET/.bundle/lock), and a run that fails taking back
the directories it made; a filesystem failure on the way is one line naming the step.
"""

import errno
import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

from bundle.deploying.fsops import discard, make_dirs, undo
from bundle.deploying.state import meta_dir
from bundle.errors import BundleError


@contextmanager
def locked(lock: Path, wait: bool, what: str) -> Iterator[None]:
    """One holder of LOCK at a time: the second waits (WAIT) or is refused."""
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise BundleError(f"{what}: another redeploy holds the lock (use --wait to queue)") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def os_error(target: Path, err: OSError, during: str) -> BundleError:
    """The one line for ERR while DURING (a step of a redeploy at TARGET)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return BundleError(f"{target}: disk full while {during}; staging removed, store paths left as they were")
    where = f" ({err.filename})" if err.filename else ""
    return BundleError(f"{target}: {during} failed: {err.strerror or err}{where}")


@contextmanager
def claimed(target: Path, wait: bool) -> Iterator[List[Path]]:
    """The target locked for this run; yields the list of directories the run makes, so that a run
    that fails takes back what it made (a refused relocation leaves no target, no .bundle/lock)."""
    meta = meta_dir(target)
    made: List[Path] = []
    done = False
    try:
        made += make_dirs(meta)
        with locked(meta / "lock", wait, str(target)):
            try:
                yield made
                done = True
            finally:
                if not done and meta in made:
                    discard(meta / "lock")
    except OSError as err:
        raise os_error(target, err, "deploying") from None
    finally:
        if not done:
            undo(made)
