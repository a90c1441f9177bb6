"""The manifest: which store paths a tree holds, their dependencies, and every file's digest.

Pure apart from reading the tree. The sha256 of the manifest's canonical JSON names the bundle,
so two trees with the same contents give the same name, whatever their mtimes or owners.
"""

import hashlib
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Union

from bundle import spackstore
from bundle.errors import BundleError
from bundle.records import Entry, Manifest, StorePath
from bundle.validate import FORMAT, STORE_NAME, check, link_escapes

__all__ = ["FORMAT", "STORE_NAME", "check", "link_escapes"]

CHUNK = 1 << 20
MANIFEST_NAME = "MANIFEST.json"  # a bundle's first member


def canonical(obj: Any) -> bytes:
    """The one byte form of a JSON value that hashes are taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(manifest)).hexdigest()


def path_digest(store_path: Mapping[str, Any]) -> str:
    """Identity of one store path's contents: what incremental redeploys compare."""
    return hashlib.sha256(canonical(store_path)).hexdigest()


def store_dir(root: Path, store: Optional[Path] = None) -> Path:
    """The store to walk: --store, else ROOT/opt/spack when ROOT is a Spack root, else ROOT itself."""
    if store is not None:
        return store
    spack_store = root / "opt" / "spack"
    return spack_store if spack_store.is_dir() else root


def is_store_path(path: Path) -> bool:
    return (path / ".spack" / "spec.json").is_file() or bool(STORE_NAME.match(path.name))


def find_store_paths(store: Path) -> List[Path]:
    """Every install prefix under the store, not descending into prefixes or dot-directories."""
    found: List[Path] = []

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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_and_find(path: Path, needle: bytes) -> Tuple[str, bool]:
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


def check_digest(name: str, data: Iterable[Union[bytes, memoryview]], expected: str) -> None:
    """Hash DATA (a file's bytes in pieces); a mismatch with the manifest's sha256 is a refusal."""
    digest = hashlib.sha256()
    for piece in data:
        digest.update(piece)
    if digest.hexdigest() != expected:
        raise BundleError(f"member {name}: sha256 mismatch")


def _utf8_name(text: str, full: str, what: str = "file name") -> None:
    """Names travel as UTF-8 JSON: one that is not (os.walk hands it over surrogate-escaped) is refused."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise BundleError(f"{os.fsencode(full)!r}: {what} is not UTF-8 (a bundle names files in UTF-8)") from None


def scan_prefix(prefix: Path, skip: FrozenSet[str] = frozenset()) -> Tuple[int, List[Entry]]:
    """(mode of the prefix, entries without sha256 yet): dirs, files and symlinks, sorted by path;
    directories named in SKIP (caches) left out."""
    entries: List[Entry] = []
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


def _digest_all(paths: List[StorePath], pending: List[Tuple[Path, Entry, int]], needle: bytes,
                on_file: Optional[Callable[[int], None]]) -> None:
    """Every file's sha256 (in threads), and per store path the files that hold NEEDLE (the build root)."""
    def digest(item: Tuple[Path, Entry, int]) -> bool:
        item[1]["sha256"], found = sha256_and_find(item[0], needle)
        if on_file:
            on_file(item[1]["size"])
        return found

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        holds_root = list(pool.map(digest, pending))
    for sp in paths:
        sp["prefixed"] = []
    for (_, entry, index), found in zip(pending, holds_root):
        if found:  # the files relocation rewrites (in manifest order: pending follows it)
            paths[index]["prefixed"].append(entry["path"])


def build(root: Path, store: Optional[Path] = None, lock: Optional[Path] = None,
          on_file: Optional[Callable[[int], None]] = None, with_spack: bool = False) -> Manifest:
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
    paths: List[StorePath] = []
    pending: List[Tuple[Path, Entry, int]] = []
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


def by_key(manifest: Manifest) -> Dict[str, StorePath]:
    return {sp["key"]: sp for sp in manifest["paths"]}


def path_bytes(store_path: StorePath) -> int:
    return sum(e.get("size", 0) for e in store_path["files"])


def totals(paths: Iterable[StorePath]) -> Tuple[int, int]:
    """(files, bytes) over store paths, for progress and summaries."""
    files = nbytes = 0
    for sp in paths:
        files += len(sp["files"])
        nbytes += path_bytes(sp)
    return files, nbytes


def diff(a: Manifest, b: Manifest) -> Dict[str, List[Dict[str, Any]]]:
    """Store paths added, removed and changed from manifest A to B, with their bytes."""
    ka, kb = by_key(a), by_key(b)
    return {
        "added": [{"key": k, "bytes": path_bytes(kb[k])} for k in sorted(kb.keys() - ka.keys())],
        "removed": [{"key": k, "bytes": path_bytes(ka[k])} for k in sorted(ka.keys() - kb.keys())],
        "changed": [{"key": k, "bytes_before": path_bytes(ka[k]), "bytes_after": path_bytes(kb[k])}
                    for k in sorted(ka.keys() & kb.keys()) if path_digest(ka[k]) != path_digest(kb[k])],
    }
