"""Where each store path of a bundle goes at the target, and which prefixes relocation rewrites.

Pure. Without relocation a store path goes to TARGET/<key>. With one, the root the bundle was built
at becomes the target; and when Spack padded the install root (config:install_tree:padded_length),
the padded root is rebuilt at the target the way the Spack there will compute it, to the same
length, so the store paths move below it and the padded prefix is rewritten in place, byte for byte.
"""

import posixpath
from typing import NamedTuple, Optional, Tuple

from bundle.format.records import Manifest
from bundle.spack import database as spackdb


class Layout(NamedTuple):  # not a dataclass: a ship's target plans on Python 3.6
    pairs: Tuple[Tuple[str, str], ...] = ()  # (old prefix, new prefix), the longest old one first
    old_install: str = ""  # the padded install root below the build root, when it moves
    new_install: str = ""

    def place(self, key: str) -> str:
        """KEY (a store path below the build root) below the target."""
        if self.old_install != self.new_install and key.startswith(self.old_install + "/"):
            return self.new_install + key[len(self.old_install):]
        return key


def layout(manifest: Manifest, relocation: Optional[Tuple[str, str]]) -> Layout:
    """The Layout of MANIFEST deployed with RELOCATION (old root, new root), or at its own root (None)."""
    if relocation is None:
        return Layout()
    old, new = relocation
    spack = manifest.get("spack")
    if not spack or not spack["install_root"]:
        return Layout(((old, new),))
    old_install = posixpath.join(old, spack["install_root"])
    new_install = spackdb.new_install_root(old, old_install, new)
    old_rel, new_rel = spack["install_root"], posixpath.relpath(new_install, new)
    if old_rel == new_rel:
        return Layout(((old, new),))
    return Layout(((old_install, new_install), (old, new)), old_rel, new_rel)
