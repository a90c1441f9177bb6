"""What Spack needs to see a redeployed store: its install database, merged into the target's.

Pure functions over the database's JSON (`<install root>/.spack-db/index.json`, Spack 1.0: version 8,
{"database": {"version": "8", "installs": {hash: record}}}), plus Spack's padding rule, so that a
store built with `config:install_tree:padded_length` is placed where the Spack at the target will
look for it. The records of the target's other installs are kept; the bundle's records replace those
with the same hash; reference counts are computed again the way Spack does (one per dependent record,
whatever the dependency type, plus one per record deprecated in its favour).
"""

import copy
import posixpath
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from bundle.errors import BundleError
from bundle.format.records import of_type

DB_DIR = ".spack-db"
INDEX = "index.json"
VERIFIER = "index_verifier"
PLACEHOLDER = "__spack_path_placeholder__"  # spack.util.path.SPACK_PATH_PADDING_CHARS
PAD_EXTRA = "_"


def padding(length: int) -> str:
    """Spack's padding string of LENGTH characters (spack.util.path._get_padding_string)."""
    reps, extra = divmod(length, len(PLACEHOLDER) + 1)
    text = "/".join([PLACEHOLDER] * reps + [PLACEHOLDER[:extra]])
    return text[:-1] + PAD_EXTRA if text.endswith("/") else text


def padded_root(unpadded: str, length: int) -> str:
    """The install root Spack derives from UNPADDED with padded_length LENGTH (spack.util.path.add_padding)."""
    unpadded = unpadded.rstrip("/")
    missing = length - len(unpadded)
    if missing <= 1:  # Spack cannot pad by one character, and does not shorten
        return unpadded
    return posixpath.join(unpadded, padding(missing - 1))


def _placeholder(part: str) -> bool:
    return part.startswith("_") and (PLACEHOLDER.startswith(part) or PLACEHOLDER.startswith(part[:-1]))


def unpadded(install_root: str) -> str:
    """INSTALL_ROOT without Spack's padding (the placeholder components it ends with)."""
    parts = install_root.split("/")
    end = len(parts)
    while end > 1 and _placeholder(parts[end - 1]):
        end -= 1
    return "/".join(parts[:end]) or "/"


def new_install_root(old_root: str, old_install: str, new_root: str) -> str:
    """Where the Spack at NEW_ROOT keeps the store that the Spack at OLD_ROOT kept at OLD_INSTALL:
    the same place below the root, padded again to the same length when it was padded."""
    old_unpadded = unpadded(old_install)
    tail = posixpath.relpath(old_unpadded, old_root)
    new_unpadded = posixpath.normpath(posixpath.join(new_root, tail))
    if old_unpadded == old_install:
        return new_unpadded
    return padded_root(new_unpadded, len(old_install))


def check_db(db: Any, what: str) -> Dict[str, dict]:
    """The installs of a database document, each field this module reads checked for type."""
    if not isinstance(db, dict) or not isinstance(db.get("database"), dict):
        raise BundleError(f"{what}: not a Spack database (no 'database' object)")
    inner = db["database"]
    if not isinstance(inner.get("version"), str) or not isinstance(inner.get("installs"), dict):
        raise BundleError(f"{what}: Spack database without a version string or an installs object")
    for h, rec in inner["installs"].items():
        if not isinstance(rec, dict) or not isinstance(rec.get("path"), (str, type(None))) \
                or not isinstance(rec.get("spec"), dict):
            raise BundleError(f"{what}: record {h!r} has no spec object or path string")
        deps = rec["spec"].get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(d, dict) and isinstance(d.get("hash"), str)
                                                 for d in deps):
            raise BundleError(f"{what}: record {h!r} has malformed dependencies")
        if not isinstance(rec.get("deprecated_for"), (str, type(None))):
            raise BundleError(f"{what}: record {h!r} has a malformed deprecated_for")
        _check_record_fields(rec, f"{what}: record {h!r}")
    return inner["installs"]


RECORD_TYPES: Dict[str, Tuple[type, ...]] = {"installed": (bool,), "explicit": (bool,), "ref_count": (int,),
                                             "installation_time": (int, float)}


def _check_record_fields(rec: dict, what: str) -> None:
    """The scalar fields Spack reads from a record, when present, of the type Spack writes (bool is no number)."""
    for field, kinds in RECORD_TYPES.items():
        if field in rec:
            value = rec[field]
            negative = field == "ref_count" and isinstance(value, int) and value < 0
            if not of_type(value, kinds) or negative:
                raise BundleError(f"{what} has a malformed {field} ({str(value)[:40]})")


def ref_counts(installs: Mapping[str, dict]) -> Dict[str, int]:
    """Reference counts as Spack's reindex computes them."""
    counts = dict.fromkeys(installs, 0)
    for rec in installs.values():
        for dep in rec["spec"].get("dependencies", []):
            if dep["hash"] in counts:
                counts[dep["hash"]] += 1
        if rec.get("deprecated_for") in counts:
            counts[rec["deprecated_for"]] += 1
    return counts


def select(installs: Mapping[str, dict], root: str, store_paths: Iterable[str]) -> Dict[str, dict]:
    """The records a bundle carries: those of its store paths (absolute, under ROOT) and those outside
    ROOT (externals such as the system's gcc); records of prefixes under ROOT that were not packed go."""
    packed = set(store_paths)
    inside = root.rstrip("/") + "/"
    return {h: rec for h, rec in installs.items()
            if rec.get("path") in packed or not str(rec.get("path") or "").startswith(inside)}


def rewrite_paths(installs: Mapping[str, dict], moved: Mapping[str, str]) -> Dict[str, dict]:
    """INSTALLS with each record's path looked up in MOVED (old absolute path -> new); others as they were."""
    out = {}
    for h, rec in installs.items():
        path = rec.get("path")
        out[h] = {**rec, "path": moved[path]} if isinstance(path, str) and path in moved else rec
    return out


def merge(existing: Optional[Mapping[str, Any]], version: str, ours: Mapping[str, dict],
          dropped_paths: Iterable[str] = ()) -> Dict[str, Any]:
    """The target's database with OURS added (a record with the same hash is replaced: it describes the
    same install) and the records at DROPPED_PATHS (store paths pruned) removed; reference counts
    computed again over the result. EXISTING None: the target has no database yet."""
    theirs = check_db(existing, "the target's Spack database") if existing is not None else {}
    if existing is not None and existing["database"]["version"] != version:
        raise BundleError(f"the target's Spack database is version {existing['database']['version']!r}, "
                          f"the bundle's {version!r}: use the same Spack release on both sides")
    gone = set(dropped_paths)
    installs = {h: rec for h, rec in theirs.items() if rec.get("path") not in gone}
    installs.update(copy.deepcopy(dict(ours)))
    counts = ref_counts(installs)
    merged = {h: {**rec, "ref_count": counts[h]} for h, rec in sorted(installs.items())}
    base = dict(existing["database"]) if existing is not None else {"version": version}
    return {"database": {**base, "installs": merged}}

