"""What a deployment records about itself (under TARGET/.bundle) and how it is checked against it:
the state (store paths this tool deployed, with their digests), the files relocation rewrote, where
store paths were placed, and verify, which compares every deployed file with the recorded manifest.
"""

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from bundle.errors import BundleError
from bundle.manifest import check, manifest_hash, sha256_file
from bundle.owned import META
from bundle.plan import ABSENT, OTHER, SAME
from bundle.records import StorePath
from bundle.relocate import apply_record

PLACES = "places.json"  # store paths placed elsewhere than their key (a padded install root rebuilt)
SPEC_FILE = ".spack/spec.json"


def meta_dir(target: Path) -> Path:
    return target / META


def load_json(path: Path) -> Dict[str, Any]:
    """A recorded JSON object, or {} when it is missing or unreadable (the next run writes it again)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def load_state(target: Path) -> Dict[str, str]:
    """Store path -> digest of what was deployed and verified there ("" while it is being replaced):
    every key is a store path this tool put there."""
    return {k: v for k, v in load_json(meta_dir(target) / "state.json").items() if isinstance(v, str)}


def load_records(target: Path) -> Dict[str, Dict[str, dict]]:
    """Store path -> {file: sha256/size/target} of the files relocation rewrote."""
    return load_json(meta_dir(target) / "relocated.json")


def load_places(target: Path) -> Dict[str, str]:
    return load_json(meta_dir(target) / PLACES)


def probe(target: Path) -> Callable[[str, StorePath], str]:
    def probe(key: str, sp: StorePath) -> str:
        path = target / key
        if not os.path.lexists(path):
            return ABSENT
        if sp.get("hash") and not path.is_symlink():
            try:
                node = json.loads((path / SPEC_FILE).read_text())["spec"]["nodes"][0]
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                return OTHER
            if isinstance(node, dict) and node.get("hash") == sp["hash"]:
                return SAME
        return OTHER
    return probe


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
