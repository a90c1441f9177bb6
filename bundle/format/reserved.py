"""What a deployment itself owns or makes below its root, besides the store paths it deploys.

Its state directory (.bundle), the staging directories of a run (beside each store path's place),
Spack's own parts (bin, etc/spack, lib/spack, share/spack: kind "spack", kept where the target has
its own), sbang's `<unpadded install root>/bin` and Spack's install database `<install root>/.spack-db`.
Each is named here once and the code that makes it takes the name from here (deploying/state.meta_dir,
deploying's stage and record steps, spack/store's parts), so that the store-path check (validate)
refuses exactly the names a deployment would make or keeps for itself. Pure.
"""

import posixpath
from typing import Any, Dict, Mapping, Optional, Tuple

from bundle.spack.database import DB_DIR

META = ".bundle"  # the tool's state: manifest, state, records, places, snippet, lock
STAGING_PREFIX = ".bundle-staging-"  # a run's staging directories, beside each store path's place
SPACK_PARTS = ("bin", "etc/spack", "lib/spack", "share/spack")  # Spack itself (redeployed with --with-spack)


def sbang_dir(unpadded_root: str) -> str:
    """Where Spack keeps sbang: `<unpadded install root>/bin` (packed as a part of kind "spack")."""
    return f"{unpadded_root}/bin" if unpadded_root else "bin"


def db_dir(install_root: str) -> str:
    """Spack's install database below the root, where redeploy merges the bundle's records."""
    return posixpath.join(install_root, DB_DIR) if install_root else DB_DIR


def spack_parts(spack: Optional[Mapping[str, Any]]) -> Tuple[str, ...]:
    """The keys a store path of kind "spack" may have: Spack's parts, and sbang's directory when the
    manifest has a "spack" section."""
    if spack is None:
        return SPACK_PARTS
    return SPACK_PARTS + (sbang_dir(spack["unpadded_root"]),)


def owned(spack: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """Path below the root -> what it is, for everything a deployment of a manifest with this "spack"
    section owns or makes there other than its store paths."""
    paths = {META: "the tool's state directory"}
    paths.update((part, "a part of Spack itself") for part in SPACK_PARTS)
    if spack is not None:
        paths[sbang_dir(spack["unpadded_root"])] = "sbang's directory"
        paths[db_dir(spack["install_root"])] = "Spack's install database"
    return paths


def is_spack_part(key: str) -> bool:
    """A deployed key that is Spack's own (a part, or sbang's `.../bin`): never stale, never replaced
    by a store path."""
    return key in SPACK_PARTS or key.endswith("/bin")


def _overlaps(key: str, path: str) -> bool:
    return key == path or key.startswith(path + "/") or path.startswith(key + "/")


def owner(key: str, spack: Optional[Mapping[str, Any]]) -> Optional[str]:
    """What of the deployment's own KEY would be, lie in, or hold (None: nothing, KEY may be a store path)."""
    if any(part.startswith(STAGING_PREFIX) for part in key.split("/")):
        return "a staging directory of a run"
    for path, what in owned(spack).items():
        if _overlaps(key, path):
            return f"{what} ({path})"
    return None
