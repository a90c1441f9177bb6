"""The manifest's pure side: its canonical bytes and hashes, store-path digests, totals and diffs.

The sha256 of the manifest's canonical JSON names the bundle, so two trees with the same contents give
the same name, whatever their mtimes or owners (packing/scan.py builds a manifest from a tree).
"""

import hashlib
import json
from typing import Any, Dict, Iterable, List, Mapping, Tuple, Union

from bundle.errors import BundleError
from bundle.format.records import Manifest, StorePath
from bundle.format.validate import FORMAT, STORE_NAME, check, link_escapes

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


def check_digest(name: str, data: Iterable[Union[bytes, memoryview]], expected: str) -> None:
    """Hash DATA (a file's bytes in pieces); a mismatch with the manifest's sha256 is a refusal."""
    digest = hashlib.sha256()
    for piece in data:
        digest.update(piece)
    if digest.hexdigest() != expected:
        raise BundleError(f"member {name}: sha256 mismatch")


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
