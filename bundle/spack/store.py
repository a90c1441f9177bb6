"""What a bundle carries besides the store paths, so that Spack sees them after a redeploy: the install
database's records (in the manifest), Spack's `<unpadded install root>/bin/sbang`, and, with
--with-spack, Spack itself (bin/, lib/spack, etc/spack, share/spack, without caches).

Each extra directory is a store path of kind "spack": read, staged and swapped in like the others,
but kept as it is where the target already has its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from bundle.errors import BundleError
from bundle.format.records import SpackSection
from bundle.format.reserved import SPACK_PARTS, sbang_dir
from bundle.spack import database as spackdb

SKIP_DIRS = frozenset({"__pycache__"})  # caches are not packed


def find_database(store: Path, is_store_path: Callable[[Path], bool]) -> Path | None:
    """The `.spack-db` directory under STORE (outside any store path), or None."""
    found: list[Path] = []

    def walk(directory: Path) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            if entry.name == spackdb.DB_DIR and (path / spackdb.INDEX).is_file():
                found.append(path)
            elif not entry.name.startswith(".") and not is_store_path(path):
                walk(path)

    walk(store)
    if len(found) > 1:
        raise BundleError(f"{store}: more than one Spack database ({', '.join(str(p) for p in found)})")
    return found[0] if found else None


def section(root: Path, db_dir: Path, store_paths: list[str]) -> SpackSection:
    """The manifest's "spack" part: where the store and sbang lie below ROOT, and the database records
    of STORE_PATHS (absolute) and of externals."""
    try:
        db = json.loads((db_dir / spackdb.INDEX).read_text())
    except (OSError, ValueError) as err:
        raise BundleError(f"{db_dir / spackdb.INDEX}: cannot read the Spack database ({err})") from None
    installs = spackdb.check_db(db, str(db_dir / spackdb.INDEX))
    install_root = db_dir.parent.as_posix()
    return {"install_root": os.path.relpath(install_root, root) if install_root != root.as_posix() else "",
            "unpadded_root": os.path.relpath(spackdb.unpadded(install_root), root),
            "version": db["database"]["version"],
            "installs": spackdb.select(installs, root.as_posix(), store_paths)}


def extra_parts(root: Path, spack: SpackSection | None, with_spack: bool) -> list[str]:
    """Keys (below ROOT) of the directories packed as kind "spack": sbang's bin/, and Spack's own parts."""
    keys = []
    if spack is not None:
        sbang = sbang_dir(spack["unpadded_root"])
        if (root / sbang / "sbang").is_file():
            keys.append(sbang)
    if with_spack:
        if not (root / "bin" / "spack").is_file() or not (root / "lib" / "spack").is_dir():
            raise BundleError(f"--with-spack: {root} is not a Spack root (no bin/spack and lib/spack)")
        keys += [part for part in SPACK_PARTS if (root / part).is_dir() and part not in keys]
    return keys
