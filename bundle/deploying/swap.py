"""The swap of a redeploy: each staged store path renamed into its place (an atomic exchange when the
place exists), and the prune of store paths the bundle no longer has; the state written around both
so that a kill at any moment leaves every store path whole and known to the next run.
"""

import os
from pathlib import Path
from typing import Dict, List

from bundle.deploying.fsops import exchange, rmtree, write_atomic
from bundle.deploying.stage import record_staging, staging_dirs
from bundle.deploying.state import meta_dir
from bundle.format.manifest import canonical, path_digest
from bundle.format.records import StorePath


def swap(target: Path, todo: List[StorePath], places: Dict[str, str], staged: Dict[str, Path],
         rewritten: Dict[str, Dict[str, dict]], state: Dict[str, str], records: dict) -> None:
    """Rename each staged store path into place. The store paths about to change are marked "" in the
    state first (still ours, no longer trusted): a kill among the renames leaves them to be written
    again by the next run, whichever bundle it deploys."""
    meta = meta_dir(target)
    write_atomic(meta / "state.json", canonical({**state, **{places[sp["key"]]: "" for sp in todo}}))
    for sp in todo:
        key = places[sp["key"]]
        final = target / key
        if os.path.lexists(final):
            exchange(staged[sp["key"]], final)
        else:
            os.rename(staged[sp["key"]], final)
        records[key] = rewritten.get(sp["key"], {})
        state[key] = path_digest(sp)
    write_atomic(meta / "relocated.json", canonical(records))
    write_atomic(meta / "state.json", canonical(state))


def prune(target: Path, stale: List[str], state: Dict[str, str], records: dict) -> None:
    """Remove store paths the tool deployed that the bundle no longer has: out of the state first,
    then renamed into a recorded staging directory and removed (a kill leaves that to the next run)."""
    meta = meta_dir(target)
    for key in stale:
        state.pop(key, None)
        records.pop(key, None)
    where = staging_dirs(target, stale)
    record_staging(meta, set(where.values()))
    write_atomic(meta / "state.json", canonical(state))
    write_atomic(meta / "relocated.json", canonical(records))
    for key in stale:
        final = target / key
        if os.path.lexists(final):
            os.makedirs(where[key], exist_ok=True)
            os.rename(final, where[key] / "0")
    for d in set(where.values()):
        rmtree(d)
