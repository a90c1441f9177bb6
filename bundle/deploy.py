"""Redeploy a bundle: lock, verify while staging beside each store path's final place, then rename each
store path into place.

Nothing under a store path of the target changes until the whole bundle has been read and every
sha256 matched (staging.py hashes and writes the files in threads); then each changed store path is
swapped in with one rename (an atomic exchange when the path already exists), so a kill at any
moment leaves every store path whole, and the next run finishes the job. Store paths recorded as
deployed with the same digest are skipped. Staging lies in the directory that will hold the store
path, so a store spread over filesystems (ROOT/opt on its own mount) is renamed within each one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bundle import archive, spackdb
from bundle import target as targets
from bundle.errors import BundleError
from bundle.fsops import exchange as _exchange
from bundle.fsops import locked, make_dirs, rmtree, undo, write_if_changed
from bundle.fsops import write_atomic as _write_atomic
from bundle.manifest import canonical, check, manifest_hash, path_digest, sha256_file
from bundle.placement import Layout, layout
from bundle.relocate import apply_record
from bundle.staging import Staging

META = targets.META
SNIPPET = "env.sh"
STAGING_PREFIX = ".bundle-staging-"
STAGING_LIST = "staging.json"  # staging directories in use, so the next run finds those a kill left
PLACES = "places.json"  # store paths placed elsewhere than their key (a padded install root rebuilt)
SPEC_FILE = ".spack/spec.json"


def meta_dir(target: Path) -> Path:
    return target / META


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def load_state(target: Path) -> dict[str, str]:
    """Store path -> digest of what was deployed and verified there ("" while it is being replaced):
    every key is a store path this tool put there."""
    return {k: v for k, v in _load(meta_dir(target) / "state.json").items() if isinstance(v, str)}


def load_records(target: Path) -> dict[str, dict[str, dict]]:
    """Store path -> {file: sha256/size/target} of the files relocation rewrote."""
    return _load(meta_dir(target) / "relocated.json")


def check_tree(base: Path, sp: dict, hashes: bool) -> list[str]:
    """Problems of one deployed (or staged) store path against its manifest entry."""
    problems: list[str] = []
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


def snippet(target: Path, manifest: dict, digest: str, places: dict[str, str] | None = None) -> str:
    """The shell lines users source: SPACK_ROOT and Spack's setup-env.sh, else the store paths' bin/."""
    places = places or {}
    lines = [f"# written by python -m bundle redeploy; bundle manifest {digest[:32]}"]
    if manifest.get("spack_root"):
        lines += [f"export SPACK_ROOT={_quote(str(target))}",
                  'if [ -f "$SPACK_ROOT/share/spack/setup-env.sh" ]; then . "$SPACK_ROOT/share/spack/setup-env.sh"; fi']
    bins = [str(target / places.get(sp["key"], sp["key"]) / "bin") for sp in manifest["paths"]
            if sp.get("kind") is None and any(e["path"] == "bin" and e["type"] == "dir" for e in sp["files"])]
    if bins:
        lines.append(f"export PATH={_quote(':'.join(bins))}:\"$PATH\"")
    return "\n".join(lines) + "\n"


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def add_to_profile(snippet_path: Path, profile: Path) -> bool:
    """Append one `source` line to PROFILE unless it is already there; True when written."""
    line = f". {_quote(str(snippet_path))}  # bundle environment\n"
    text = profile.read_text() if profile.exists() else ""
    if line in text:
        return False
    with open(profile, "a") as f:
        f.write(("" if not text or text.endswith("\n") else "\n") + line)
    return True


ABSENT, SAME, OTHER = "absent", "same", "other"  # what is at a store path's place at the target


def plan(manifest: dict, state: dict[str, str], probe: Callable[[str, dict], str],
         place: Callable[[str], str] = str) -> dict:
    """What to write, skip, keep and prune (pure apart from PROBE, which says what is at a place of the
    target: ABSENT, SAME (a Spack install of the same hash) or OTHER). Refuses a store path whose place
    holds something else that this tool did not put there, or that would lie inside one it did: nothing
    outside the store paths the tool owns is replaced. The target's own Spack, or its own install of the
    same spec, is kept as it is."""
    owned = set(state)
    places = {sp["key"]: place(sp["key"]) for sp in manifest["paths"]}
    todo, kept = [], []
    for sp in manifest["paths"]:
        key = places[sp["key"]]
        cut = key.rfind("/")
        while cut > 0:
            if key[:cut] in owned:
                raise BundleError(f"store path {key} would lie inside the deployed store path {key[:cut]}")
            cut = key.rfind("/", 0, cut)
        found = probe(key, sp)
        if found != ABSENT and key not in owned:
            if sp.get("kind") == "spack" or found == SAME:
                kept.append(key)
                continue
            raise BundleError(f"{key}: exists at the target and was not deployed by this tool; refusing to replace it")
        if state.get(key) != path_digest(sp) or found == ABSENT:
            todo.append(sp)
    return {"todo": todo, "kept": kept, "stale": sorted(owned - set(places.values())), "places": places}


def _probe(target: Path) -> Callable[[str, dict], str]:
    def probe(key: str, sp: dict) -> str:
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


def _staging_dirs(target: Path, keys: list[str]) -> dict[str, Path]:
    """One staging directory beside the final place of each store path (per parent directory)."""
    token = f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return {key: target / os.path.dirname(key) / token for key in keys}


def _clean_leftovers(target: Path, places: list[str]) -> None:
    """Staging directories and temporary files a killed run left: those it recorded, and any in the
    directories that hold this bundle's store paths."""
    meta = meta_dir(target)
    recorded = _load(meta / STAGING_LIST).get("dirs", [])
    for parent in {target / os.path.dirname(key) for key in places}:
        try:
            recorded += [str(p) for p in parent.glob(STAGING_PREFIX + "*")]
        except OSError:
            pass
    for path in set(recorded):
        p = Path(str(path))
        if p.name.startswith(STAGING_PREFIX) and str(p).startswith(str(target) + "/"):
            rmtree(p)
    for tmp in meta.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    (meta / STAGING_LIST).unlink(missing_ok=True)


def _record_staging(meta: Path, dirs: set[Path]) -> None:
    _write_atomic(meta / STAGING_LIST, canonical({"dirs": sorted(str(d) for d in dirs)}))


def _stage(bundle: Path, manifest: dict, digest: str, target: Path, todo: list[dict], places: dict[str, str],
           lay: Layout, on_file: Callable[[int], None] | None, made: list[Path]) -> tuple[Staging, set[Path]]:
    """Read the bundle into staging beside each store path's final place; returns the sink and its dirs."""
    where = _staging_dirs(target, [places[sp["key"]] for sp in todo])
    dirs = set(where.values())
    _record_staging(meta_dir(target), dirs)
    staged = {sp["key"]: where[places[sp["key"]]] / str(i) for i, sp in enumerate(todo)}
    sink = Staging(staged, todo, lay.pairs or None)
    try:
        for d in sorted(dirs):
            made += make_dirs(d.parent)
            os.mkdir(d)
        sink.start()
        archive.read(bundle, sink, on_file=on_file, known=(manifest, digest))
        # Every staged byte was checked on its way in (type, mode, size, link target, sha256) and every
        # manifest entry was seen, so the staged tree is not walked again; only relocated store paths
        # are, since relocation rewrote files after they were verified.
        for sp in todo if lay.pairs else ():
            problems = check_tree(staged[sp["key"]], apply_record(sp, sink.records.get(sp["key"], {})), hashes=False)
            if problems:
                raise BundleError(f"staged {problems[0]}")
    finally:
        sink.close()
    return sink, dirs


def _swap(target: Path, todo: list[dict], places: dict[str, str], sink: Staging, state: dict[str, str],
          records: dict) -> None:
    """Rename each staged store path into place. The store paths about to change are marked "" in the
    state first (still ours, no longer trusted): a kill among the renames leaves them to be written
    again by the next run, whichever bundle it deploys."""
    meta = meta_dir(target)
    _write_atomic(meta / "state.json", canonical({**state, **{places[sp["key"]]: "" for sp in todo}}))
    for sp in todo:
        key = places[sp["key"]]
        final, staged = target / key, sink.staged[sp["key"]]
        if os.path.lexists(final):
            _exchange(staged, final)
        else:
            os.rename(staged, final)
        records[key] = sink.records.get(sp["key"], {})
        state[key] = path_digest(sp)
    _write_atomic(meta / "relocated.json", canonical(records))
    _write_atomic(meta / "state.json", canonical(state))


def _prune(target: Path, stale: list[str], state: dict[str, str], records: dict) -> None:
    """Remove store paths the tool deployed that the bundle no longer has: out of the state first,
    then renamed into a recorded staging directory and removed (a kill leaves that to the next run)."""
    meta = meta_dir(target)
    for key in stale:
        state.pop(key, None)
        records.pop(key, None)
    where = _staging_dirs(target, stale)
    _record_staging(meta, set(where.values()))
    _write_atomic(meta / "state.json", canonical(state))
    _write_atomic(meta / "relocated.json", canonical(records))
    for key in stale:
        final = target / key
        if os.path.lexists(final):
            os.makedirs(where[key], exist_ok=True)
            os.rename(final, where[key] / "0")
    for d in set(where.values()):
        rmtree(d)


def _update_spack_db(target: Path, manifest: dict, places: dict[str, str], lay: Layout, dropped: list[str]) -> bool:
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
    db_dir = target / install / spackdb.DB_DIR
    os.makedirs(db_dir, exist_ok=True)
    index = db_dir / spackdb.INDEX
    with open(db_dir / "lock", "a+") as lock:
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
            _write_atomic(index, json.dumps(merged, separators=(",", ":")).encode())
            _write_atomic(db_dir / spackdb.VERIFIER, uuid.uuid4().hex.encode())
            return True
        finally:
            fcntl.lockf(lock, fcntl.LOCK_UN)


def _os_error(target: Path, err: OSError, during: str) -> BundleError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return BundleError(f"{target}: disk full while {during}; staging removed, store paths left as they were")
    where = f" ({err.filename})" if err.filename else ""
    return BundleError(f"{target}: {during} failed: {err.strerror or err}{where}")


def redeploy(bundle: Path, prefix: Path | None = None, *, relocate: bool = False, wait: bool = False,
             prune: bool = False, profile: Path | None = None, on_file: Callable[[int], None] | None = None,
             on_plan: Callable[[int, int], None] | None = None,
             on_target: Callable[[Path], None] | None = None) -> dict:
    """Deploy BUNDLE at PREFIX (default: where it was built); returns a summary for the CLI."""
    start = time.monotonic()
    bundle = Path(bundle)
    manifest, digest = archive.read(bundle, manifest_only=True)
    target, relocation = targets.choose(manifest["root"], None if prefix is None else os.fsdecode(prefix), relocate)
    targets.check_existing(target, explicit=prefix is not None)
    if on_target:
        on_target(target)
    meta = meta_dir(target)
    made: list[Path] = []
    done = False
    try:
        made = make_dirs(meta)
        with locked(meta / "lock", wait, str(target)):
            try:
                result = _deploy_locked(bundle, manifest, digest, target, layout(manifest, relocation), prune,
                                        profile, on_file, on_plan, made)
                done = True
            finally:
                if not done and meta in made:
                    (meta / "lock").unlink(missing_ok=True)
    except OSError as err:
        raise _os_error(target, err, "deploying") from None
    finally:
        if not done:
            undo(made)
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


def _deploy_locked(bundle: Path, manifest: dict, digest: str, target: Path, lay: Layout, prune: bool,
                   profile: Path | None, on_file: Callable[[int], None] | None,
                   on_plan: Callable[[int, int], None] | None, made: list[Path]) -> dict:
    meta = meta_dir(target)
    state = load_state(target)
    records = load_records(target)
    steps = plan(manifest, state, _probe(target), lay.place)
    places = steps["places"]
    _clean_leftovers(target, list(places.values()))
    todo = steps["todo"]
    files = sum(len(sp["files"]) for sp in todo)
    nbytes = sum(e.get("size", 0) for sp in todo for e in sp["files"])
    if on_plan:
        on_plan(files, nbytes)
    if todo:
        dirs: set[Path] = set()
        try:
            try:
                sink, dirs = _stage(bundle, manifest, digest, target, todo, places, lay, on_file, made)
            except OSError as err:
                raise _os_error(target, err, "staging") from None
            try:
                _swap(target, todo, places, sink, state, records)
            except OSError as err:
                raise _os_error(target, err, "swapping in") from None
        finally:
            for d in dirs or _staging_dirs_recorded(meta):
                rmtree(d)
            (meta / STAGING_LIST).unlink(missing_ok=True)
    if prune and steps["stale"]:
        try:
            _prune(target, steps["stale"], state, records)
        finally:
            (meta / STAGING_LIST).unlink(missing_ok=True)
    db_written = _update_spack_db(target, manifest, places, lay, steps["stale"] if prune else [])
    written_meta = write_if_changed(meta / "manifest.json", canonical(manifest))
    written_meta |= write_if_changed(meta / PLACES, canonical({k: v for k, v in places.items() if k != v}))
    env = meta / SNIPPET
    written_meta |= write_if_changed(env, snippet(target, manifest, digest, places).encode())
    profiled = add_to_profile(env, profile) if profile else False
    return {"bundle": bundle.name, "manifest": digest, "target": str(target), "store_paths": len(manifest["paths"]),
            "relocated_files": sum(len(r) for r in records.values()), "read": bool(todo),
            "written_paths": sorted(places[sp["key"]] for sp in todo), "written_files": files,
            "written_bytes": nbytes, "kept_paths": steps["kept"], "stale_paths": [] if prune else steps["stale"],
            "pruned_paths": steps["stale"] if prune else [], "metadata_written": written_meta,
            "spack_db_written": db_written, "profile": profiled, "snippet": str(env)}


def _staging_dirs_recorded(meta: Path) -> list[Path]:
    return [Path(str(d)) for d in _load(meta / STAGING_LIST).get("dirs", [])]


def verify_deployment(target: Path, *, hashes: bool = True, on_file: Callable[[int], None] | None = None) -> dict:
    """Check every file of a deployment against the manifest it recorded (and that manifest itself)."""
    target = Path(os.path.abspath(target))
    try:
        manifest = json.loads((meta_dir(target) / "manifest.json").read_text())
    except FileNotFoundError:
        raise BundleError(f"{target}: not a deployment (no {META}/manifest.json)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BundleError(f"{target}: recorded manifest is not JSON ({err})") from None
    check(manifest)
    problems: list[str] = []
    records, owned, places = load_records(target), load_state(target), _load(meta_dir(target) / PLACES)
    for sp in manifest["paths"]:
        key = places.get(sp["key"], sp["key"])
        if key not in owned and (sp.get("kind") == "spack" or _probe(target)(key, sp) == SAME):
            continue  # the target's own Spack, or its own install of the same spec, kept by the redeploy
        problems += check_tree(target / key, apply_record(sp, records.get(key, {})), hashes)
        if on_file:
            on_file(sum(e.get("size", 0) for e in sp["files"]))
    return {"target": str(target), "manifest": manifest_hash(manifest), "problems": problems,
            "store_paths": len(manifest["paths"])}
