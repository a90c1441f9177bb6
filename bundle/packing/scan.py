"""A manifest built from an installed tree: which store paths it holds, their dependencies, and every
file's digest (pack's first step).

Reads the tree (in threads for the digests); the manifest's own rules are format/.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bundle.errors import BundleError
from bundle.format.manifest import CHUNK, FORMAT, STORE_NAME, check
from bundle.format.records import Entry, Manifest, StorePath
from bundle.spack import store as spackstore


def store_dir(root: Path, store: Path | None = None) -> Path:
    """The store to walk: --store, else ROOT/opt/spack when ROOT is a Spack root, else ROOT itself."""
    if store is not None:
        return store
    spack_store = root / "opt" / "spack"
    return spack_store if spack_store.is_dir() else root


def is_store_path(path: Path) -> bool:
    return (path / ".spack" / "spec.json").is_file() or bool(STORE_NAME.match(path.name))


def find_store_paths(store: Path) -> list[Path]:
    """Every install prefix under the store, not descending into prefixes or dot-directories."""
    found: list[Path] = []

    def walk(directory: Path) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            raise BundleError(f"cannot read {directory}: {err.strerror}") from None
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            if is_store_path(path):
                found.append(path)
            else:
                walk(path)

    walk(store)
    return found


def spec_info(prefix: Path) -> dict:
    """Name, version, hash and dependency hashes: from .spack/spec.json when present, else the name."""
    info: dict = {"name": None, "version": None, "hash": None, "deps": []}
    match = STORE_NAME.match(prefix.name)
    if match:
        info.update(name=match["name"], version=match["version"], hash=match["hash"])
    spec_file = prefix / ".spack" / "spec.json"
    if spec_file.is_file():
        try:
            nodes = json.loads(spec_file.read_text())["spec"]["nodes"]
            node = nodes[0]
            info["name"] = node.get("name", info["name"])
            info["version"] = str(node.get("version", info["version"]))
            info["hash"] = node.get("hash", info["hash"])
            info["deps"] = sorted({d["hash"] for d in node.get("dependencies", []) if "hash" in d})
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise BundleError(f"{spec_file}: not a Spack spec.json ({err})") from None
    return info


def sha256_and_find(path: Path, needle: bytes) -> tuple[str, bool]:
    """(sha256 of the file, whether it holds NEEDLE): the one read of every byte at pack time also says
    which files name the build root, so relocation later reads only those."""
    digest, found, keep, tail = hashlib.sha256(), False, max(0, len(needle) - 1), b""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
            if not found:
                found = needle in chunk or (keep > 0 and needle in tail + chunk[:keep])
                tail = chunk[-keep:] if keep else b""
    return digest.hexdigest(), found


def _utf8_name(text: str, full: str, what: str = "file name") -> None:
    """Names travel as UTF-8 JSON: one that is not (os.walk hands it over surrogate-escaped) is refused."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise BundleError(f"{os.fsencode(full)!r}: {what} is not UTF-8 (a bundle names files in UTF-8)") from None


def scan_prefix(prefix: Path, skip: frozenset[str] = frozenset()) -> tuple[int, list[Entry]]:
    """(mode of the prefix, entries without sha256 yet): dirs, files and symlinks, sorted by path;
    directories named in SKIP (caches) left out."""
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(prefix):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        rel_dir = os.path.relpath(dirpath, prefix)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            _utf8_name(rel, full)
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode) & 0o777  # setuid/setgid/sticky never travel
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full)
                _utf8_name(target, full, "symlink target")
                entries.append({"path": rel, "type": "link", "target": target})
            elif stat.S_ISDIR(st.st_mode):
                entries.append({"path": rel, "type": "dir", "mode": mode})
            elif stat.S_ISREG(st.st_mode):
                entries.append({"path": rel, "type": "file", "mode": mode, "size": st.st_size})
            else:
                raise BundleError(f"{full}: not a file, directory or symlink (device, socket or fifo)")
    entries.sort(key=lambda e: e["path"])
    return stat.S_IMODE(os.lstat(prefix).st_mode) & 0o777, entries


def _digest_all(paths: list[StorePath], pending: list[tuple[Path, Entry, int]], needle: bytes,
                on_file: Callable[[int], None] | None) -> None:
    """Every file's sha256 (in threads), and per store path the files that hold NEEDLE (the build root)."""
    def digest(item: tuple[Path, Entry, int]) -> bool:
        item[1]["sha256"], found = sha256_and_find(item[0], needle)
        if on_file:
            on_file(item[1]["size"])
        return found

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        holds_root = list(pool.map(digest, pending))
    for sp in paths:
        sp["prefixed"] = []
    for (_, entry, index), found in zip(pending, holds_root):  # noqa: B905 - one result per item; 3.9 has no strict
        if found:  # the files relocation rewrites (in manifest order: pending follows it)
            paths[index]["prefixed"].append(entry["path"])


def build(root: Path, store: Path | None = None, lock: Path | None = None,
          on_file: Callable[[int], None] | None = None, with_spack: bool = False) -> Manifest:
    """The manifest of every store path under ROOT (or --store), with every file's sha256; with the
    records of Spack's install database and sbang when the store has them, and Spack itself (WITH_SPACK)."""
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise BundleError(f"{root}: no such directory")
    store = store_dir(root, Path(os.path.abspath(store)) if store else None)
    if not store.is_dir():
        raise BundleError(f"{store}: no such store directory")
    if store != root and root not in store.parents:
        root = store
    prefixes = find_store_paths(store)
    if not prefixes:
        raise BundleError(f"{store}: no store paths (<name>-<version>-<hash> or .spack/spec.json) found")
    paths: list[StorePath] = []
    pending: list[tuple[Path, Entry, int]] = []
    for prefix in prefixes:
        mode, entries = scan_prefix(prefix)
        key = prefix.relative_to(root).as_posix()
        _utf8_name(key, str(prefix), "store path name")
        info = spec_info(prefix)
        paths.append({"key": key, "name": info["name"], "version": info["version"], "hash": info["hash"],
                      "deps": info["deps"], "mode": mode, "files": entries})
        pending += [(prefix / e["path"], e, len(paths) - 1) for e in entries if e["type"] == "file"]
    db_dir = spackstore.find_database(store, is_store_path)
    spack = spackstore.section(root, db_dir, [p.as_posix() for p in prefixes]) if db_dir else None
    for key in spackstore.extra_parts(root, spack, with_spack):
        mode, entries = scan_prefix(root / key, spackstore.SKIP_DIRS)
        paths.append({"key": key, "kind": "spack", "name": key, "version": None, "hash": None, "deps": [],
                      "mode": mode, "files": entries})
        pending += [(root / key / e["path"], e, len(paths) - 1) for e in entries if e["type"] == "file"]

    _digest_all(paths, pending, root.as_posix().encode(), on_file)
    lock = lock if lock is not None else (root / "spack.lock" if (root / "spack.lock").is_file() else None)
    manifest: Manifest = {
        "format": FORMAT,
        "root": root.as_posix(),
        "spack_root": (root / "opt" / "spack") == store,
        "lock": Path(lock).read_text() if lock else None,
        "paths": paths,
    }
    if spack is not None:
        manifest["spack"] = spack
    check(manifest)
    return manifest
