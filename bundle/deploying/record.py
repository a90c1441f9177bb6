"""The record step of a redeploy: the bundle's install records merged into the target's Spack database
(under Spack's own lock), then the manifest, the places and the snippet, each written only when it changed.
"""

import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

from bundle.deploying.fsops import write_atomic, write_if_changed
from bundle.deploying.plan import Plan
from bundle.deploying.snippet import add_to_profile, snippet
from bundle.deploying.state import PLACES, meta_dir
from bundle.errors import BundleError
from bundle.format.manifest import canonical
from bundle.format.records import Manifest
from bundle.format.reserved import db_dir
from bundle.relocation.layout import Layout
from bundle.spack import database as spackdb

SNIPPET = "env.sh"


class Recorded(NamedTuple):  # not a dataclass: a ship's target records on Python 3.6
    snippet: str  # the snippet's path
    metadata_written: bool
    spack_db_written: bool
    profile: bool


def update_spack_db(target: Path, manifest: Manifest, places: Dict[str, str], lay: Layout, dropped: List[str]) -> bool:
    """Merge the bundle's install records into the target's Spack database (under Spack's own lock),
    their paths moved to where the store paths now are; True when the database changed."""
    spack = manifest.get("spack")
    if spack is None:
        return False
    root = manifest["root"]
    moved = {f"{root}/{sp['key']}": str(target / places[sp["key"]]) for sp in manifest["paths"]
             if sp.get("kind") is None and f"{root}/{sp['key']}" != str(target / places[sp["key"]])}
    ours = spackdb.rewrite_paths(spack["installs"], moved)
    install = os.path.dirname(lay.place(f"{spack['install_root']}/x")) if spack["install_root"] else ""
    db = target / db_dir(install)
    os.makedirs(db, exist_ok=True)
    index = db / spackdb.INDEX
    with open(db / "lock", "a+") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)  # the lock Spack takes on its database (whole file)
        try:
            try:
                existing = json.loads(index.read_text())
            except FileNotFoundError:
                existing = None
            except (ValueError, UnicodeDecodeError) as err:
                raise BundleError(f"{index}: the target's Spack database is not JSON ({err})") from None
            merged = spackdb.merge(existing, spack["version"], ours, [str(target / k) for k in dropped])
            if merged == existing:
                return False
            write_atomic(index, json.dumps(merged, separators=(",", ":")).encode())
            write_atomic(db / spackdb.VERIFIER, uuid.uuid4().hex.encode())
            return True
        finally:
            fcntl.lockf(lock, fcntl.LOCK_UN)


def record(target: Path, manifest: Manifest, digest: str, steps: Plan, lay: Layout, prune: bool,
           profile: Optional[Path]) -> Recorded:
    """Spack's database, the manifest, the places and the snippet (and the profile line, with PROFILE)."""
    meta = meta_dir(target)
    db_written = update_spack_db(target, manifest, steps.places, lay, steps.stale if prune else [])
    written_meta = write_if_changed(meta / "manifest.json", canonical(manifest))
    written_meta |= write_if_changed(meta / PLACES, canonical({k: v for k, v in steps.places.items() if k != v}))
    env = meta / SNIPPET
    written_meta |= write_if_changed(env, snippet(target, manifest, digest, steps.places).encode())
    return Recorded(str(env), written_meta, db_written, add_to_profile(env, profile) if profile else False)
