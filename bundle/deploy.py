"""Redeploy a bundle in named steps: plan, stage, relocate, swap, record; one Result.

Lock the target, plan (plan.py), stage: read the bundle into staging directories beside each store
path's final place, every member checked and every sha256 matched on its way in (staging.py hashes
and writes in threads); relocate the staged store paths when the target is not where the bundle was
built (relocate.py); swap each one into place with one rename (an atomic exchange when the path
exists); record the state, Spack's database, the manifest and the snippet. Nothing under a store
path of the target changes before the swap, so a kill at any moment leaves every store path whole
and the next run finishes the job; staging lies beside the final places, so a store spread over
filesystems (ROOT/opt on its own mount) is renamed within each one.
"""

import errno
import fcntl
import json
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Set, Tuple, Union

from bundle import reader, spackdb
from bundle import target as targets
from bundle.deployment import (
    PLACES,
    check_tree,
    load_json,
    load_records,
    load_state,
    meta_dir,
    probe,
    verify_deployment,
)
from bundle.errors import BundleError
from bundle.fsops import discard, locked, make_dirs, rmtree, undo, write_if_changed
from bundle.fsops import exchange as _exchange
from bundle.fsops import write_atomic as _write_atomic
from bundle.manifest import canonical, path_digest
from bundle.owned import STAGING_PREFIX, db_dir
from bundle.placement import Layout, layout
from bundle.plan import Plan, plan
from bundle.records import Manifest, StorePath
from bundle.relocate import apply_record, patchelf_command, relocate_store_path
from bundle.snippet import add_to_profile, snippet
from bundle.staging import Staging

__all__ = ["META", "Result", "Source", "redeploy", "verify_deployment"]
META = targets.META
SNIPPET = "env.sh"
STAGING_LIST = "staging.json"  # staging directories in use, so the next run finds those a kill left


class Result(NamedTuple):
    """What a redeploy did, for the CLI's text and --json (not a dataclass: a ship's target runs on Python 3.6)."""

    bundle: str
    manifest: str
    target: str
    store_paths: int
    snippet: str
    read: bool  # the bundle's members were read (not a no-op)
    written_paths: List[str]
    written_files: int
    written_bytes: int
    kept_paths: List[str]
    stale_paths: List[str]
    pruned_paths: List[str]
    metadata_written: bool
    spack_db_written: bool
    profile: bool
    relocated_files: int = 0
    seconds: float = 0.0

    def as_dict(self) -> Dict[str, Any]:
        return dict(self._asdict())


def _staging_dirs(target: Path, keys: List[str]) -> Dict[str, Path]:
    """One staging directory beside the final place of each store path (per parent directory)."""
    token = f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return {key: target / os.path.dirname(key) / token for key in keys}


def _clean_leftovers(target: Path, places: List[str]) -> None:
    """Staging directories and temporary files a killed run left: those it recorded, and any in the
    directories that hold this bundle's store paths."""
    meta = meta_dir(target)
    recorded = load_json(meta / STAGING_LIST).get("dirs", [])
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
        discard(tmp)
    discard(meta / STAGING_LIST)


def _record_staging(meta: Path, dirs: Set[Path]) -> None:
    _write_atomic(meta / STAGING_LIST, canonical({"dirs": sorted(str(d) for d in dirs)}))


class Source:
    """Where a redeploy reads the bundle: a file here (read twice: the manifest, then the members of the
    store paths to write). A ship's target (remote.py) and a pulled stream are other sources."""

    def __init__(self, bundle: Path) -> None:
        self.bundle = Path(bundle)
        self.name = self.bundle.name
        self._read: Optional[Tuple[Manifest, str]] = None

    def manifest(self) -> Tuple[Manifest, str]:
        self._read = reader.read(self.bundle, manifest_only=True)
        return self._read

    def planned(self, steps: Plan, target: Path) -> None:
        """Called under the target's lock once the plan is made (a ship's target tells the sender here)."""

    def stage(self, todo: List[StorePath], sink: reader.Sink, on_file: Optional[Callable[[int], None]]) -> None:
        """Every member of the store paths in TODO checked and handed to SINK (others may be read and skipped)."""
        reader.read(self.bundle, sink, on_file=on_file, known=self._read)


def _stage(source: Source, target: Path, todo: List[StorePath],
           places: Dict[str, str], on_file: Optional[Callable[[int], None]], made: List[Path]) -> Dict[str, Path]:
    """Read the bundle into staging beside each store path's final place; returns where each one is staged.
    Every staged byte is checked on its way in (type, mode, size, link target, sha256) and every
    manifest entry seen, so the staged tree is not walked again."""
    where = _staging_dirs(target, [places[sp["key"]] for sp in todo])
    _record_staging(meta_dir(target), set(where.values()))
    staged = {sp["key"]: where[places[sp["key"]]] / str(i) for i, sp in enumerate(todo)}
    for d in sorted(set(where.values())):
        made += make_dirs(d.parent)
        os.mkdir(d)
    sink = Staging(staged, todo)
    try:
        sink.start()
        source.stage(todo, sink, on_file)
    finally:
        sink.close()
    return staged


def _relocate(todo: List[StorePath], staged: Dict[str, Path], lay: Layout) -> Dict[str, Dict[str, dict]]:
    """Rewrite the staged store paths for the target (lay.pairs); what was rewritten, per store path.
    Relocation rewrites files after they were verified, so each relocated store path is checked
    against the manifest and the record of its rewrites."""
    tool = patchelf_command()
    records = {}
    for sp in todo:
        records[sp["key"]] = relocate_store_path(staged[sp["key"]], sp, lay.pairs, tool)
        problems = check_tree(staged[sp["key"]], apply_record(sp, records[sp["key"]]), hashes=False)
        if problems:
            raise BundleError(f"staged {problems[0]}")
    return records


def _swap(target: Path, todo: List[StorePath], places: Dict[str, str], staged: Dict[str, Path],
          rewritten: Dict[str, Dict[str, dict]], state: Dict[str, str], records: dict) -> None:
    """Rename each staged store path into place. The store paths about to change are marked "" in the
    state first (still ours, no longer trusted): a kill among the renames leaves them to be written
    again by the next run, whichever bundle it deploys."""
    meta = meta_dir(target)
    _write_atomic(meta / "state.json", canonical({**state, **{places[sp["key"]]: "" for sp in todo}}))
    for sp in todo:
        key = places[sp["key"]]
        final = target / key
        if os.path.lexists(final):
            _exchange(staged[sp["key"]], final)
        else:
            os.rename(staged[sp["key"]], final)
        records[key] = rewritten.get(sp["key"], {})
        state[key] = path_digest(sp)
    _write_atomic(meta / "relocated.json", canonical(records))
    _write_atomic(meta / "state.json", canonical(state))


def _prune(target: Path, stale: List[str], state: Dict[str, str], records: dict) -> None:
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


def _update_spack_db(target: Path, manifest: Manifest, places: Dict[str, str], lay: Layout, dropped: List[str]) -> bool:
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
            _write_atomic(index, json.dumps(merged, separators=(",", ":")).encode())
            _write_atomic(db / spackdb.VERIFIER, uuid.uuid4().hex.encode())
            return True
        finally:
            fcntl.lockf(lock, fcntl.LOCK_UN)


def _os_error(target: Path, err: OSError, during: str) -> BundleError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return BundleError(f"{target}: disk full while {during}; staging removed, store paths left as they were")
    where = f" ({err.filename})" if err.filename else ""
    return BundleError(f"{target}: {during} failed: {err.strerror or err}{where}")


@contextmanager
def _claimed(target: Path, wait: bool) -> Iterator[List[Path]]:
    """The target locked for this run; yields the list of directories the run makes, so that a run
    that fails takes back what it made (a refused relocation leaves no target, no .bundle/lock)."""
    meta = meta_dir(target)
    made: List[Path] = []
    done = False
    try:
        made += make_dirs(meta)
        with locked(meta / "lock", wait, str(target)):
            try:
                yield made
                done = True
            finally:
                if not done and meta in made:
                    discard(meta / "lock")
    except OSError as err:
        raise _os_error(target, err, "deploying") from None
    finally:
        if not done:
            undo(made)


def redeploy(bundle: Union[Path, Source], prefix: Optional[Path] = None, *, relocate: bool = False, wait: bool = False,
             prune: bool = False, profile: Optional[Path] = None, on_file: Optional[Callable[[int], None]] = None,
             on_plan: Optional[Callable[[int, int], None]] = None,
             on_target: Optional[Callable[[Path], None]] = None) -> Result:
    """Deploy BUNDLE at PREFIX (default: where it was built): plan, stage, relocate, swap, record."""
    start = time.monotonic()
    source = bundle if isinstance(bundle, Source) else Source(Path(bundle))
    manifest, digest = source.manifest()
    target, relocation = targets.choose(manifest["root"], None if prefix is None else os.fsdecode(prefix), relocate)
    targets.check_existing(target, explicit=prefix is not None)
    if on_target:
        on_target(target)
    lay = layout(manifest, relocation)
    meta = meta_dir(target)
    with _claimed(target, wait) as made:
        state, records = load_state(target), load_records(target)
        steps = plan(manifest, state, probe(target), lay.place)
        _clean_leftovers(target, list(steps.places.values()))
        if on_plan:
            on_plan(steps.files, steps.bytes)
        source.planned(steps, target)
        try:
            if steps.todo:
                try:
                    staged = _stage(source, target, steps.todo, steps.places, on_file, made)
                    rewritten = _relocate(steps.todo, staged, lay) if lay.pairs else {}
                except OSError as err:
                    raise _os_error(target, err, "staging") from None
                try:
                    _swap(target, steps.todo, steps.places, staged, rewritten, state, records)
                except OSError as err:
                    raise _os_error(target, err, "swapping in") from None
            if prune and steps.stale:
                _prune(target, steps.stale, state, records)
        finally:
            for d in _staging_dirs_recorded(meta):
                rmtree(d)
            discard(meta / STAGING_LIST)
        result = _record(target, manifest, digest, source.name, steps, lay, prune, profile)
    return result._replace(relocated_files=sum(len(r) for r in records.values()),
                           seconds=round(time.monotonic() - start, 3))


def _record(target: Path, manifest: Manifest, digest: str, name: str, steps: Plan, lay: Layout, prune: bool,
            profile: Optional[Path]) -> Result:
    """Spack's database, the manifest, the places and the snippet, each written only when it changed."""
    meta = meta_dir(target)
    db_written = _update_spack_db(target, manifest, steps.places, lay, steps.stale if prune else [])
    written_meta = write_if_changed(meta / "manifest.json", canonical(manifest))
    written_meta |= write_if_changed(meta / PLACES, canonical({k: v for k, v in steps.places.items() if k != v}))
    env = meta / SNIPPET
    written_meta |= write_if_changed(env, snippet(target, manifest, digest, steps.places).encode())
    return Result(name, digest, str(target), len(manifest["paths"]), str(env), read=bool(steps.todo),
                  written_paths=sorted(steps.places[sp["key"]] for sp in steps.todo), written_files=steps.files,
                  written_bytes=steps.bytes, kept_paths=steps.kept, stale_paths=[] if prune else steps.stale,
                  pruned_paths=steps.stale if prune else [], metadata_written=written_meta,
                  spack_db_written=db_written, profile=add_to_profile(env, profile) if profile else False)


def _staging_dirs_recorded(meta: Path) -> List[Path]:
    return [Path(str(d)) for d in load_json(meta / STAGING_LIST).get("dirs", [])]
