"""The plan of a redeploy: which store paths to write, keep, skip and prune (pure).

A store path is written when its place at the target is empty, or holds what this tool deployed there
with another digest. Its place holding anything else is refused (nothing the tool did not deploy is
replaced), except the target's own Spack and its own installs of the same spec, which are kept.
"""

from typing import Callable, Dict, List, NamedTuple

from bundle.errors import BundleError
from bundle.format.manifest import path_digest
from bundle.format.records import Manifest, StorePath
from bundle.format.reserved import is_spack_part

ABSENT, SAME, OTHER = "absent", "same", "other"  # what is at a store path's place at the target


class Plan(NamedTuple):  # not a dataclass: a ship's target plans on Python 3.6
    todo: List[StorePath]  # to stage and swap in
    kept: List[str]  # places the target already fills with its own
    stale: List[str]  # deployed earlier, no longer in the bundle
    places: Dict[str, str]  # manifest key -> place below the target

    @property
    def files(self) -> int:
        """Regular files to write (what the progress line counts)."""
        return sum(e["type"] == "file" for sp in self.todo for e in sp["files"])

    @property
    def bytes(self) -> int:
        return sum(e.get("size", 0) for sp in self.todo for e in sp["files"])


def plan(manifest: Manifest, state: Dict[str, str], probe: Callable[[str, StorePath], str],
         place: Callable[[str], str] = str) -> Plan:
    """What to write, skip, keep and prune (pure apart from PROBE, which says what is at a place of the
    target: ABSENT, SAME (a Spack install of the same hash) or OTHER). Refuses a store path whose place
    holds something else that this tool did not put there, or that would lie inside one it did: nothing
    outside the store paths the tool owns is replaced. The target's own Spack, or its own install of the
    same spec, is kept as it is."""
    owned = set(state)
    places = {sp["key"]: place(sp["key"]) for sp in manifest["paths"]}
    todo: List[StorePath] = []
    kept: List[str] = []
    for sp in manifest["paths"]:
        key = places[sp["key"]]
        cut = key.rfind("/")
        while cut > 0:
            if key[:cut] in owned:
                raise BundleError(f"store path {key} would lie inside the deployed store path {key[:cut]}")
            cut = key.rfind("/", 0, cut)
        if key in owned and sp.get("kind") is None and is_spack_part(key):
            raise BundleError(f"store path {key}: the deployment holds Spack's own {key} there; refusing to replace it")
        found = probe(key, sp)
        if found != ABSENT and key not in owned:
            if sp.get("kind") == "spack" or found == SAME:
                kept.append(key)
                continue
            raise BundleError(f"{key}: exists at the target and was not deployed by this tool; refusing to replace it")
        if state.get(key) != path_digest(sp) or found == ABSENT:
            todo.append(sp)
    # Spack's own parts (and sbang's bin/) are never stale: a bundle packed without --with-spack keeps
    # the Spack an earlier one deployed.
    stale = sorted(k for k in owned - set(places.values()) if not is_spack_part(k))
    return Plan(todo, kept, stale, places)
