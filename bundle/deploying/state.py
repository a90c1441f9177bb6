"""What a deployment records about itself under TARGET/.bundle, read back: the state (store paths this
tool deployed, with their digests), the files relocation rewrote, where store paths were placed; and
what is at a store path's place (probe), which the plan and verify ask.
"""

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict

from bundle.deploying.plan import ABSENT, OTHER, SAME
from bundle.format.records import StorePath
from bundle.format.reserved import META

PLACES = "places.json"  # store paths placed elsewhere than their key (a padded install root rebuilt)
SPEC_FILE = ".spack/spec.json"


def meta_dir(target: Path) -> Path:
    return target / META


def load_json(path: Path) -> Dict[str, Any]:
    """A recorded JSON object, or {} when it is missing or unreadable (the next run writes it again)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def load_state(target: Path) -> Dict[str, str]:
    """Store path -> digest of what was deployed and verified there ("" while it is being replaced):
    every key is a store path this tool put there."""
    return {k: v for k, v in load_json(meta_dir(target) / "state.json").items() if isinstance(v, str)}


def load_records(target: Path) -> Dict[str, Dict[str, dict]]:
    """Store path -> {file: sha256/size/target} of the files relocation rewrote."""
    return load_json(meta_dir(target) / "relocated.json")


def load_places(target: Path) -> Dict[str, str]:
    return load_json(meta_dir(target) / PLACES)


def probe(target: Path) -> Callable[[str, StorePath], str]:
    def probe(key: str, sp: StorePath) -> str:
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
