"""verify of a deployment: every deployed file compared with the manifest the deployment recorded
(and the record of what relocation rewrote), the recorded manifest itself checked first.
"""

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Callable, List, Optional

from bundle.deploying.plan import SAME
from bundle.deploying.state import PLACES, load_json, load_records, load_state, meta_dir, probe
from bundle.errors import BundleError
from bundle.format.manifest import CHUNK, check, manifest_hash
from bundle.format.records import StorePath
from bundle.format.reserved import META
from bundle.relocation.rewrite import apply_record


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_tree(base: Path, sp: StorePath, hashes: bool) -> List[str]:
    """Problems of one deployed (or staged) store path against its manifest entry."""
    problems: List[str] = []
    key = sp["key"]
    if not base.is_dir() or base.is_symlink():
        return [f"{key}: missing"]
    if stat.S_IMODE(os.lstat(base).st_mode) != sp["mode"]:
        problems.append(f"{key}: mode of the store path's directory differs")
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


def verify_deployment(target: Path, *, hashes: bool = True, on_file: Optional[Callable[[int], None]] = None) -> dict:
    """Check every file of a deployment against the manifest it recorded (and that manifest itself)."""
    target = Path(os.path.abspath(target))
    try:
        manifest = json.loads((meta_dir(target) / "manifest.json").read_text())
    except FileNotFoundError:
        raise BundleError(f"{target}: not a deployment (no {META}/manifest.json)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BundleError(f"{target}: recorded manifest is not JSON ({err})") from None
    check(manifest)
    problems: List[str] = []
    records, owned, places = load_records(target), load_state(target), load_json(meta_dir(target) / PLACES)
    for sp in manifest["paths"]:
        key = places.get(sp["key"], sp["key"])
        if key not in owned and (sp.get("kind") == "spack" or probe(target)(key, sp) == SAME):
            continue  # the target's own Spack, or its own install of the same spec, kept by the redeploy
        problems += check_tree(target / key, apply_record(sp, records.get(key, {})), hashes)
        if on_file:
            on_file(sum(e.get("size", 0) for e in sp["files"]))
    return {"target": str(target), "manifest": manifest_hash(manifest), "problems": problems,
            "store_paths": len(manifest["paths"])}
