"""Redeploy a bundle in named steps: plan, stage, relocate, swap, record; one Result.

Lock the target (lock.py), plan against what it holds (plan.py), stage: read the bundle into staging
directories beside each store path's final place, every member checked and every sha256 matched on its
way in (stage.py hashes and writes in threads); relocate the staged store paths when the target is not
where the bundle was built (relocation/); swap each one into place with one rename, an atomic exchange
when the path exists (swap.py); record the state, Spack's database, the manifest and the snippet
(record.py). Nothing under a store path of the target changes before the swap, so a kill at any moment
leaves every store path whole and the next run finishes the job; staging lies beside the final places,
so a store spread over filesystems (ROOT/opt on its own mount) is renamed within each one.
"""

import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Union

from bundle.deploying import target as targets
from bundle.deploying.lock import claimed, os_error
from bundle.deploying.plan import plan
from bundle.deploying.record import record
from bundle.deploying.source import Source
from bundle.deploying.stage import clean_leftovers, drop_staging, stage
from bundle.deploying.state import load_records, load_state, meta_dir, probe
from bundle.deploying.swap import prune as prune_stale
from bundle.deploying.swap import swap
from bundle.deploying.verify import check_tree
from bundle.errors import BundleError
from bundle.format.records import StorePath
from bundle.relocation.layout import Layout, layout
from bundle.relocation.rewrite import apply_record, patchelf_command, relocate_store_path

__all__ = ["Result", "Source", "redeploy"]


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


def relocate_staged(todo: List[StorePath], staged: Dict[str, Path], lay: Layout) -> Dict[str, Dict[str, dict]]:
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
    with claimed(target, wait) as made:
        state, records = load_state(target), load_records(target)
        steps = plan(manifest, state, probe(target), lay.place)
        clean_leftovers(target, list(steps.places.values()))
        if on_plan:
            on_plan(steps.files, steps.bytes)
        source.planned(steps, target)
        try:
            if steps.todo:
                try:
                    staged = stage(source, target, steps.todo, steps.places, on_file, made)
                    rewritten = relocate_staged(steps.todo, staged, lay) if lay.pairs else {}
                except OSError as err:
                    raise os_error(target, err, "staging") from None
                try:
                    swap(target, steps.todo, steps.places, staged, rewritten, state, records)
                except OSError as err:
                    raise os_error(target, err, "swapping in") from None
            if prune and steps.stale:
                prune_stale(target, steps.stale, state, records)
        finally:
            drop_staging(meta_dir(target))
        done = record(target, manifest, digest, steps, lay, prune, profile)
    return Result(source.name, digest, str(target), len(manifest["paths"]), done.snippet, read=bool(steps.todo),
                  written_paths=sorted(steps.places[sp["key"]] for sp in steps.todo), written_files=steps.files,
                  written_bytes=steps.bytes, kept_paths=steps.kept, stale_paths=[] if prune else steps.stale,
                  pruned_paths=steps.stale if prune else [], metadata_written=done.metadata_written,
                  spack_db_written=done.spack_db_written, profile=done.profile,
                  relocated_files=sum(len(r) for r in records.values()), seconds=round(time.monotonic() - start, 3))
