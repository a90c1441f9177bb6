"""Redeploy a bundle: lock, verify while staging next to the target, then rename each store path into place.

Nothing under a store path of the target changes until the whole bundle has been read and every
sha256 matched (staging.py hashes and writes the files in threads); then each changed store path is
swapped in with one rename (an atomic exchange when the path already exists), so a kill at any
moment leaves every store path whole, and the next run finishes the job. Store paths recorded as
deployed with the same digest are skipped.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bundle import archive
from bundle.manifest import BundleError, canonical, manifest_hash, path_digest, sha256_file
from bundle.relocate import apply_record
from bundle.staging import Staging

META = ".bundle"
SNIPPET = "env.sh"
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def meta_dir(target: Path) -> Path:
    return target / META


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (Linux renameat2); falls back to a two-step swap elsewhere."""
    fn = getattr(_libc, "renameat2", None)
    if fn is not None:
        AT_FDCWD = -100
        if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(b))
    aside = b.with_name(b.name + ".old-" + uuid.uuid4().hex[:8])
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def _rmtree(path: Path) -> None:
    def writable(func: Callable, p: str, _exc: object) -> None:
        os.chmod(os.path.dirname(p), 0o700)
        func(p)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=writable)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextmanager
def locked(target: Path, wait: bool) -> Iterator[None]:
    """One redeploy per target at a time: the second waits (--wait) or is refused."""
    meta = meta_dir(target)
    meta.mkdir(parents=True, exist_ok=True)
    with open(meta / "lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise BundleError(f"{target}: another redeploy holds the lock (use --wait to queue)") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def load_state(target: Path) -> dict[str, str]:
    """Store path -> digest of what was deployed and verified there."""
    return _load(meta_dir(target) / "state.json")


def load_records(target: Path) -> dict[str, dict[str, dict]]:
    """Store path -> {file: sha256/size/target} of the files relocation rewrote."""
    return _load(meta_dir(target) / "relocated.json")


def check_tree(base: Path, sp: dict, hashes: bool) -> list[str]:
    """Problems of one deployed (or staged) store path against its manifest entry."""
    problems: list[str] = []
    key = sp["key"]
    if not base.is_dir() or base.is_symlink():
        return [f"{key}: missing"]
    listed = set()
    for e in sp["files"]:
        path, name = base / e["path"], f"{key}/{e['path']}"
        listed.add(e["path"])
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            problems.append(f"{name}: missing")
            continue
        if e["type"] == "link":
            if not stat.S_ISLNK(st.st_mode) or os.readlink(path) != e["target"]:
                problems.append(f"{name}: symlink differs")
        elif e["type"] == "dir":
            if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != e["mode"]:
                problems.append(f"{name}: directory or its mode differs")
        elif not stat.S_ISREG(st.st_mode) or st.st_size != e["size"] or stat.S_IMODE(st.st_mode) != e["mode"]:
            problems.append(f"{name}: type, size or mode differs")
        elif hashes and sha256_file(path) != e["sha256"]:
            problems.append(f"{name}: sha256 differs")
    for dirpath, dirnames, filenames in os.walk(base):
        for n in dirnames + filenames:
            rel = os.path.relpath(os.path.join(dirpath, n), base)
            if rel not in listed:
                problems.append(f"{key}/{rel}: not in the manifest")
    return problems


def snippet(target: Path, manifest: dict, digest: str) -> str:
    """The shell lines users source: SPACK_ROOT and Spack's setup-env.sh, else the store paths' bin/."""
    lines = [f"# written by python -m bundle redeploy; bundle manifest {digest[:32]}"]
    if manifest.get("spack_root"):
        lines += [f"export SPACK_ROOT={_quote(str(target))}",
                  'if [ -f "$SPACK_ROOT/share/spack/setup-env.sh" ]; then . "$SPACK_ROOT/share/spack/setup-env.sh"; fi']
    bins = [str(target / sp["key"] / "bin") for sp in manifest["paths"]
            if any(e["path"] == "bin" and e["type"] == "dir" for e in sp["files"])]
    if bins:
        lines.append(f"export PATH={_quote(':'.join(bins))}:\"$PATH\"")
    return "\n".join(lines) + "\n"


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def add_to_profile(snippet_path: Path, profile: Path) -> bool:
    """Append one `source` line to PROFILE unless it is already there; True when written."""
    line = f". {_quote(str(snippet_path))}  # bundle environment\n"
    text = profile.read_text() if profile.exists() else ""
    if line in text:
        return False
    with open(profile, "a") as f:
        f.write(("" if not text or text.endswith("\n") else "\n") + line)
    return True


def redeploy(bundle: Path, prefix: Path | None = None, *, relocate: bool = False, wait: bool = False,
             profile: Path | None = None, on_file: Callable[[int], None] | None = None,
             on_plan: Callable[[int, int], None] | None = None) -> dict:
    """Deploy BUNDLE at PREFIX (default: where it was built); returns a summary for the CLI."""
    start = time.monotonic()
    bundle = Path(bundle)
    manifest, digest = archive.read(bundle, manifest_only=True)
    built = Path(manifest["root"])
    target = Path(os.path.abspath(prefix)) if prefix else built
    relocation = None
    if target != built:
        if not relocate:
            raise BundleError(f"bundle was built at {built}; deploying at {target} needs --relocate")
        relocation = (str(built), str(target))
    target.mkdir(parents=True, exist_ok=True)
    with locked(target, wait):
        meta = meta_dir(target)
        for old in meta.glob("staging-*"):
            _rmtree(old)  # left by a killed run
        state = load_state(target)
        records = load_records(target)
        digests = {sp["key"]: path_digest(sp) for sp in manifest["paths"]}
        todo = {k for k, d in digests.items() if state.get(k) != d or not (target / k).is_dir()}
        todo_paths = [sp for sp in manifest["paths"] if sp["key"] in todo]
        files = sum(len(sp["files"]) for sp in todo_paths)
        nbytes = sum(e.get("size", 0) for sp in todo_paths for e in sp["files"])
        if on_plan:
            on_plan(files, nbytes)
        if todo:
            staging = meta / f"staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            sink = Staging(staging, todo_paths, relocation)
            try:
                staging.mkdir()
                sink.start()
                archive.read(bundle, sink, on_file=on_file, known=(manifest, digest))
                # Every staged byte was checked on its way in (type, mode, size, link target, sha256) and every
                # manifest entry was seen, so the staged tree is not walked again; only relocated store paths
                # are, since relocation rewrote files after they were verified.
                for sp in todo_paths if relocation else ():
                    expected = apply_record(sp, sink.records.get(sp["key"], {}))
                    problems = check_tree(sink.staged[sp["key"]], expected, hashes=False)
                    if problems:
                        raise BundleError(f"staged {problems[0]}")
            except OSError as err:
                sink.close()
                _rmtree(staging)
                if err.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise BundleError(f"{target}: disk full while staging; staging removed, target untouched") \
                        from None
                raise BundleError(f"{target}: staging failed: {err.strerror} ({err.filename})") from None
            except BaseException:
                sink.close()
                _rmtree(staging)
                raise
            sink.close()
            # The store paths about to change leave the recorded state first: a kill among the renames then
            # leaves them to be written again by the next run, whichever bundle it deploys (recording each
            # one after its rename left a moment where a swapped-in path still carried its old digest).
            _write_atomic(meta / "state.json", canonical({k: d for k, d in state.items() if k not in todo}))
            for sp in todo_paths:
                key = sp["key"]
                final, staged = target / key, sink.staged[key]
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists() or final.is_symlink():
                    _exchange(staged, final)
                else:
                    os.rename(staged, final)
                records[key] = sink.records.get(key, {})
                state[key] = digests[key]
            _write_atomic(meta / "relocated.json", canonical(records))
            _write_atomic(meta / "state.json", canonical(state))
            _rmtree(staging)
        written_meta = _write_if_changed(meta / "manifest.json", canonical(manifest))
        env = meta / SNIPPET
        written_meta |= _write_if_changed(env, snippet(target, manifest, digest).encode())
        profiled = add_to_profile(env, profile) if profile else False
    return {"bundle": bundle.name, "manifest": digest, "target": str(target), "store_paths": len(manifest["paths"]),
            "relocated_files": sum(len(r) for r in records.values()),
            "written_paths": sorted(todo), "written_files": files if todo else 0,
            "written_bytes": nbytes if todo else 0, "metadata_written": written_meta, "profile": profiled,
            "snippet": str(env), "seconds": round(time.monotonic() - start, 3)}


def _write_if_changed(path: Path, data: bytes) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    _write_atomic(path, data)
    return True


def verify_deployment(target: Path, *, hashes: bool = True, on_file: Callable[[int], None] | None = None) -> dict:
    """Check every file of a deployment against the manifest it recorded."""
    target = Path(os.path.abspath(target))
    try:
        manifest = json.loads((meta_dir(target) / "manifest.json").read_text())
    except FileNotFoundError:
        raise BundleError(f"{target}: not a deployment (no {META}/manifest.json)") from None
    except ValueError as err:
        raise BundleError(f"{target}: recorded manifest is not JSON ({err})") from None
    problems: list[str] = []
    records = load_records(target)
    for sp in manifest["paths"]:
        problems += check_tree(target / sp["key"], apply_record(sp, records.get(sp["key"], {})), hashes)
        if on_file:
            on_file(sum(e.get("size", 0) for e in sp["files"]))
    return {"target": str(target), "manifest": manifest_hash(manifest), "problems": problems,
            "store_paths": len(manifest["paths"])}
