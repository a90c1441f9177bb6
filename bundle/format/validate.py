"""Is a manifest safe to act on? Its shape, its store-path names, and where its symlinks really lead.

Pure: nothing here touches a filesystem. A manifest comes from the bundle, so every field is checked
for type before anything reads it, and every name for what Spack itself would make; symlinks are
resolved through the other symlinks of the manifest's own tree (never the target's filesystem), so a
link that is lexically inside its store path but really leaves it (`up -> ../..`, then
`esc -> up/../../x`) is refused, in pack as in redeploy.
"""

import posixpath
import re
from typing import Any, Dict, FrozenSet, List, Optional, Set, Tuple, Union

from bundle.errors import BundleError
from bundle.format import reserved
from bundle.format.records import of_type
from bundle.spack import database as spackdb

FORMAT = "bundle/1"
# <name>-<version>-<hash>: Spack's default 32-character base32 hash.
STORE_NAME = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<hash>[a-z2-7]{32})$")
SPEC_FILE = ".spack/spec.json"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ASCII = re.compile(r"[\x01-\x7f]*\Z")  # ASCII without NUL (str.isascii is 3.7+; a ship's target may run 3.6)
SPEC_HASH = re.compile(r"^[a-z2-7]{32}$")  # a spec's hash, as Spack writes it (store path names, dependencies)
# The fields each record may have: a field nothing reads is refused too, so no code can read one unchecked.
FIELDS = frozenset({"format", "root", "spack_root", "lock", "paths", "spack"})
PATH_FIELDS = frozenset({"key", "kind", "name", "version", "hash", "deps", "mode", "files", "prefixed"})
SPACK_FIELDS = frozenset({"install_root", "unpadded_root", "version", "installs"})
ENTRY_FIELDS = {"file": frozenset({"path", "type", "mode", "size", "sha256"}),
                "dir": frozenset({"path", "type", "mode"}), "link": frozenset({"path", "type", "target"})}
MAX_HOPS = 40  # as the kernel's MAXSYMLINKS


def _utf8(text: str, what: str) -> None:
    """JSON can carry lone surrogates (\\udcff), which no file name or canonical form can encode."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise BundleError(f"{what}: not valid UTF-8 ({text!r})") from None
    if "\0" in text:
        raise BundleError(f"{what}: NUL in {text!r}")


def _utf8_everywhere(obj: Any, what: str) -> None:
    """Every string in OBJ (keys too) valid UTF-8 without NUL: free-form records are written out again."""
    todo = [obj]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            _utf8(item, what)
        elif isinstance(item, dict):
            todo += item.keys()
            todo += item.values()
        elif isinstance(item, list):
            todo += item


def _typed(obj: dict, field: str, kind: Union[type, Tuple[type, ...]], what: str, optional: bool = False) -> Any:
    """OBJ[FIELD] when it has type KIND (bool is never an int here); a one-line refusal otherwise."""
    value = obj.get(field)
    if value is None and optional:
        return None
    if not of_type(value, kind):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        got = "missing" if field not in obj else f"{type(value).__name__} {value!r}"[:80]
        raise BundleError(f"manifest {what}: field {field!r} should be {names}, is {got}")
    if isinstance(value, str):
        _utf8(value, f"manifest {what} {field}")
    return value


def _only(obj: dict, fields: FrozenSet[str], what: str) -> None:
    """Refuse a field OBJ should not have (a size on a directory, a typo, an addition)."""
    extra = sorted(k for k in obj if k not in fields)
    if extra:
        raise BundleError(f"manifest {what}: field {str(extra[0])[:40]!r} does not belong there")


def _mode(obj: dict, what: str) -> None:
    mode = _typed(obj, "mode", int, what)
    if mode < 0 or mode & ~0o777:
        raise BundleError(f"{what}: mode {mode:o} has setuid, setgid or sticky bits or is not a mode")


def check_shape(manifest: Any) -> None:
    """Every field the tool reads has the type it expects (a bundle is input, not trusted data)."""
    if not isinstance(manifest, dict):
        raise BundleError(f"manifest is a {type(manifest).__name__}, not an object")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"manifest format {str(manifest.get('format'))[:40]!r} is not {FORMAT}")
    _only(manifest, FIELDS, "")
    _typed(manifest, "root", str, "")
    _typed(manifest, "spack_root", bool, "", optional=True)
    _typed(manifest, "lock", str, "", optional=True)
    for i, sp in enumerate(_typed(manifest, "paths", list, "")):
        if not isinstance(sp, dict):
            raise BundleError(f"manifest paths[{i}] is not an object")
        key = _typed(sp, "key", str, f"paths[{i}]")
        _only(sp, PATH_FIELDS, key)
        for field in ("name", "version", "hash", "kind"):
            _typed(sp, field, str, key, optional=True)
        for field in ("deps", "prefixed"):  # may be absent (older bundles), never null
            for item in _typed(sp, field, list, key) if field in sp else ():
                if not isinstance(item, str):
                    raise BundleError(f"manifest {key}: an item of {field} is not a string")
        for h in ([sp["hash"]] if sp.get("hash") is not None else []) + sp.get("deps", []):
            if not SPEC_HASH.match(h):
                raise BundleError(f"manifest {key}: {h[:40]!r} is not a spec hash (32 base32 characters)")
        _mode(sp, key)
        files = _typed(sp, "files", list, key)
        for j, e in enumerate(files):
            if not _entry_ok(e):  # the common case in one expression; the slow path says what is wrong
                _entry_shape(e, key, j)


def _entry_ok(e: Any) -> bool:
    """True for a well-typed entry (exact types: bool is not an int, float is not a size)."""
    if type(e) is not dict or type(e.get("path")) is not str:
        return False
    kind = e.get("type")
    if kind == "file":
        size, sha, mode = e.get("size"), e.get("sha256"), e.get("mode")
        return (type(size) is int and size >= 0 and type(sha) is str and len(sha) == 64 and type(mode) is int
                and 0 <= mode <= 0o777 and len(e) == 5 and SHA256.match(sha) is not None and _encodes(e["path"]))
    if kind == "dir":
        mode = e.get("mode")
        return type(mode) is int and 0 <= mode <= 0o777 and len(e) == 3 and _encodes(e["path"])
    if kind == "link":
        target = e.get("target")
        return type(target) is str and target != "" and len(e) == 3 and _encodes(e["path"]) and _encodes(target)
    return False


def _encodes(text: str) -> bool:
    return _ASCII.match(text) is not None or _utf8_ok(text)


def _utf8_ok(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\0" not in text


def _entry_shape(e: Any, key: str, j: int) -> None:
    """Raise the one-line refusal that says what is wrong with entry J of store path KEY."""
    if not isinstance(e, dict):
        raise BundleError(f"manifest {key}: files[{j}] is not an object")
    path = _typed(e, "path", str, f"{key} files[{j}]")
    what = f"{key}/{path}"
    kind = _typed(e, "type", str, what)
    if kind == "link":
        if not _typed(e, "target", str, what):
            raise BundleError(f"{what}: empty symlink target")
    elif kind in ("file", "dir"):
        _mode(e, what)
        if kind == "file":
            if _typed(e, "size", int, what) < 0:
                raise BundleError(f"{what}: negative size")
            if not SHA256.match(_typed(e, "sha256", str, what)):
                raise BundleError(f"{what}: sha256 is not 64 hex digits")
    else:
        raise BundleError(f"{what}: unknown entry type {kind!r}")
    _only(e, ENTRY_FIELDS[kind], f"{what} ({kind})")
    raise BundleError(f"{what}: malformed entry")


def _safe_rel(rel: str, what: str) -> None:
    if not rel or rel.startswith("/"):
        raise BundleError(f"{what}: absolute or empty path {rel!r}")
    if ".." in rel.split("/") or posixpath.normpath(rel) != rel:
        raise BundleError(f"{what}: path {rel!r} has '..' or is not normalised")


def check_spack(manifest: dict) -> None:
    """The "spack" part of a manifest checked: where the install root and sbang lie, the database records."""
    spack = manifest.get("spack")
    if spack is None:
        return
    if not isinstance(spack, dict):
        raise BundleError("manifest spack: not an object")
    _only(spack, SPACK_FIELDS, "spack")
    install, unpadded = _typed(spack, "install_root", str, "spack"), _typed(spack, "unpadded_root", str, "spack")
    for rel in (install, unpadded):
        if rel:
            _safe_rel(rel, "manifest spack root")
            if any(part.startswith(".") for part in rel.split("/")):
                raise BundleError(f"manifest spack root {rel!r}: hidden component")
    if install and not (install == unpadded or install.startswith(unpadded + "/")):
        raise BundleError(f"manifest spack: install root {install!r} does not lie in {unpadded!r}")
    _typed(spack, "version", str, "spack")
    spackdb.check_db({"database": {"version": spack["version"], "installs": _typed(spack, "installs", dict, "spack")}},
                     "manifest spack")
    _utf8_everywhere(spack["installs"], "manifest spack installs")


def check_key(sp: dict, spack: Optional[dict] = None) -> None:
    """A store path is named the way Spack names one: `<name>-<version>-<hash>`, or a directory that
    holds .spack/spec.json; no component is hidden (so never '.', '..' or the tool's own .bundle),
    and it is not, does not lie in and does not hold anything the deployment owns (reserved.py: Spack's
    parts, sbang, Spack's database of the manifest's SPACK section). Parts of Spack itself (kind
    "spack") are one of reserved.spack_parts(SPACK)."""
    key = sp["key"]
    _safe_rel(key, "store path")
    if any(part.startswith(".") for part in key.split("/")):
        raise BundleError(f"store path {key!r}: a hidden component ('.', '..', .bundle, ...) is never a store path")
    if sp.get("kind") == "spack":
        spack_parts = reserved.spack_parts(spack)
        if key not in spack_parts:
            raise BundleError(f"store path {key!r}: not a part of Spack ({', '.join(sorted(spack_parts))})")
        return
    if sp.get("kind") is not None:
        raise BundleError(f"store path {key!r}: unknown kind {sp['kind']!r}")
    if not STORE_NAME.match(key.rsplit("/", 1)[-1]) and not any(
            e["path"] == SPEC_FILE and e["type"] == "file" for e in sp["files"]):
        raise BundleError(f"store path {key!r}: neither <name>-<version>-<hash> nor a directory holding {SPEC_FILE}")
    what = reserved.owner(key, spack)
    if what is not None:
        raise BundleError(f"store path {key!r}: would be, lie in or hold {what}, which the deployment owns")


def _parts(path: str) -> List[str]:
    return [p for p in path.split("/") if p and p != "."]


def link_escapes(rel: str, target: str, key: str, root: str, tree: Optional[Dict[str, dict]] = None) -> bool:
    """True when the symlink REL of store path KEY (built under ROOT), pointing at TARGET, leads outside
    KEY once every symlink met on the way is followed through TREE (path -> entry of the store path;
    none: lexically). Components missing from TREE are taken as plain directories, which is stricter
    than the kernel (it would stop there)."""
    tree = tree or {}
    prefix = _parts(root) + _parts(key)
    where = _parts(posixpath.dirname(rel))
    todo = list(reversed(_parts(target)))  # a stack: the next component last
    if target.startswith("/"):
        if todo[len(todo) - len(prefix):][::-1] != prefix:
            return True
        del todo[len(todo) - len(prefix):]
        where = []
    hops = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if not where:
                return True
            where.pop()
            continue
        where.append(part)
        entry = tree.get("/".join(where))
        if entry is not None and entry["type"] == "link":
            hops += 1
            if hops > MAX_HOPS:  # a loop: the kernel stops here (ELOOP), so it leads nowhere
                return False
            where.pop()
            inner = entry["target"]
            more = _parts(inner)
            if inner.startswith("/"):
                if more[:len(prefix)] != prefix:
                    return True
                more, where = more[len(prefix):], []
            todo.extend(reversed(more))
    return False


def check(manifest: Any) -> None:
    """Refuse a manifest that is malformed, names store paths Spack would not make, would write outside
    its store paths, or carries unsafe modes or symlinks."""
    check_shape(manifest)
    root = manifest["root"]
    if not root.startswith("/") or posixpath.normpath(root) != root:
        raise BundleError(f"manifest root {root!r} is not an absolute, normalised path")
    check_spack(manifest)
    keys: Set[str] = set()
    for sp in manifest["paths"]:
        check_key(sp, manifest.get("spack"))
        key = sp["key"]
        if key in keys:
            raise BundleError(f"store path {key} listed twice")
        keys.add(key)
        tree: Dict[str, dict] = {}
        for e in sp["files"]:
            _safe_rel(e["path"], f"{key}")
            if e["path"] in tree:
                raise BundleError(f"{key}/{e['path']}: listed twice")
            tree[e["path"]] = e
        for e in sp["files"]:
            parent = e["path"].rpartition("/")[0]
            if parent and tree.get(parent, {}).get("type") != "dir":  # else it could be written through a symlink
                raise BundleError(f"{key}/{e['path']}: its parent {parent} is not a directory of the manifest")
            if e["type"] == "link" and link_escapes(e["path"], e["target"], key, root, tree):
                raise BundleError(f"{key}/{e['path']}: symlink to {e['target']} points outside its store path")
        for rel in sp.get("prefixed", ()):
            if tree.get(rel, {}).get("type") != "file":
                raise BundleError(f"{key}/{rel}: listed as holding the prefix, not a file of the manifest")
    for key in keys:
        cut = key.rfind("/")
        while cut > 0:
            if key[:cut] in keys:
                raise BundleError(f"store path {key} lies inside store path {key[:cut]}")
            cut = key.rfind("/", 0, cut)
