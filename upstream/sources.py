"""Getting a pinned source tree: from a local source mirror, or from upstream (checked), never unchecked.

A mirror is a folder of `NAME-VERSION.tar.gz` (`git archive` of the pinned commit, top folder
NAME-VERSION/), named by $PARSL_MPI_STACK_SOURCES or --sources. Without one, release tarballs are
downloaded and their sha256 checked, and git sources are cloned and their commit checked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import urllib.request
from pathlib import Path

from . import safetar
from .errors import UpstreamError
from .pins import Source

MIRROR_ENV = "PARSL_MPI_STACK_SOURCES"
TIMEOUT = 60  # seconds for a download or clone to answer


class SourceError(UpstreamError, RuntimeError):
    """A source that cannot be had; the message is one line and says how to provide it."""


def mirror_from_env() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def how_to_provide(source: Source) -> str:
    return (f"set {MIRROR_ENV}=DIR (or --sources DIR) to a folder holding {source.archive}, "
            f"or allow access to {source.url}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unpack(archive: Path, into: Path, top: str) -> Path:
    """Unpack an archive whose members all lie under `top/`; returns into/top."""
    dest = into / top
    shutil.rmtree(dest, ignore_errors=True)
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            names = tar.getnames()
            if not names or any(n.split("/")[0] != top for n in names):
                raise SourceError(f"{archive}: expected every member under {top}/")
            safetar.extract(tar, into)
    except safetar.UnsafeMember as err:
        raise SourceError(f"{archive}: refused: {err}") from None
    except (tarfile.TarError, OSError) as err:
        raise SourceError(f"{archive}: cannot unpack: {err}") from None
    return dest


def _download(source: Source, downloads: Path) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    dest = downloads / source.archive
    if not dest.exists():
        part = dest.with_suffix(".part")
        try:
            with urllib.request.urlopen(source.url, timeout=TIMEOUT) as resp, part.open("wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as err:
            part.unlink(missing_ok=True)
            raise SourceError(f"{source.name} {source.version}: cannot download {source.url} ({err}); "
                              + how_to_provide(source)) from None
        part.rename(dest)
    if source.sha256 and _sha256(dest) != source.sha256:
        dest.unlink()
        raise SourceError(f"{source.url}: sha256 differs from the pinned {source.sha256[:12]}...; not used")
    return dest


def _clone(source: Source, into: Path, top: str) -> Path:
    dest = into / top
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    git = ["git", "-C", str(dest), "-c", "advice.detachedHead=false"]
    try:
        for cmd in (["init", "-q"], ["fetch", "-q", "--depth", "1", source.url, str(source.commit)],
                    ["checkout", "-q", "FETCH_HEAD"]):
            subprocess.run([*git, *cmd], check=True, capture_output=True, timeout=TIMEOUT * 10)
        head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.SubprocessError) as err:
        shutil.rmtree(dest, ignore_errors=True)
        raise SourceError(f"{source.name}: cannot clone {source.url} at {source.commit} ({type(err).__name__}); "
                          + how_to_provide(source)) from None
    if head.strip() != source.commit:
        shutil.rmtree(dest, ignore_errors=True)
        raise SourceError(f"{source.url}: HEAD is {head.strip()}, not the pinned {source.commit}")
    return dest


def archive_commit(archive: Path) -> str | None:
    """The commit a `git archive` tarball was made from (its pax global header), or None."""
    try:
        with tarfile.open(archive) as tar:
            tar.next()
            return tar.pax_headers.get("comment")
    except (OSError, tarfile.TarError):
        return None


def tree(source: Source, into: Path, *, mirror: Path | None, downloads: Path) -> Path:
    """The unpacked source tree of `source` under `into`, from the mirror when given, else upstream.

    A git source from the mirror must be the `git archive` of its pinned commit, as a clone must be.
    """
    top = source.archive.removesuffix(".tar.gz")
    if mirror is not None:
        archive = mirror / source.archive
        if not archive.is_file():
            raise SourceError(f"{archive} not found in the source mirror ({MIRROR_ENV})")
        if source.commit and (commit := archive_commit(archive)) != source.commit:
            raise SourceError(f"{archive} is the git archive of {commit or 'no commit'}, "
                              f"not of the pinned {source.commit}")
        return _unpack(archive, into, top)
    if source.commit:
        return _clone(source, into, top)
    return _unpack(_download(source, downloads), into, top)


def reachable(sources: list[Source], mirror: Path | None) -> str | None:
    """None when every source can be had, else one line saying what is missing (no download made)."""
    if mirror is not None:
        missing = [s.archive for s in sources if not (mirror / s.archive).is_file()]
        return f"{mirror} lacks {', '.join(missing)}" if missing else None
    host = "https://github.com"
    try:
        urllib.request.urlopen(urllib.request.Request(host, method="HEAD"), timeout=10).close()
    except OSError:
        return (f"no source mirror ({MIRROR_ENV} unset) and {host} cannot be reached; "
                f"set {MIRROR_ENV}=DIR to a folder of {', '.join(s.archive for s in sources)}")
    return None
