"""The manifest's records as types: what every module reads from a manifest, checked by mypy.

A manifest is JSON, so these are TypedDicts over the parsed dicts (validate.check_shape makes sure a
bundle's manifest has these shapes before anything reads it). Optional keys sit in a total=False
subclass (typing.NotRequired needs Python 3.11). A ship's target imports this module on Python 3.6
(shipping/remote.py), which has neither TypedDict nor Literal: there the types are plain dicts and strings, and
only mypy reads the TypedDicts.
"""

from typing import TYPE_CHECKING, Tuple, Union

if TYPE_CHECKING:
    from typing import Literal, TypedDict

    EntryType = Literal["file", "dir", "link"]

    class _Entry(TypedDict):
        path: str
        type: EntryType

    class Entry(_Entry, total=False):
        """One file, directory or symlink of a store path (PATH relative to it)."""

        mode: int  # file, dir
        size: int  # file
        sha256: str  # file
        target: str  # link

    class _StorePath(TypedDict):
        key: str
        name: str | None
        version: str | None
        hash: str | None
        deps: list[str]
        mode: int
        files: list[Entry]

    class StorePath(_StorePath, total=False):
        """A store path (KEY relative to the manifest's root), or with kind "spack" a part of Spack itself."""

        kind: str
        prefixed: list[str]  # its files that hold the build root, found at pack time: what relocation rewrites

    class SpackSection(TypedDict):
        """Where Spack keeps the store below the root, and its install database's records."""

        install_root: str
        unpadded_root: str
        version: str
        installs: dict[str, dict]

    class _Manifest(TypedDict):
        format: str
        root: str
        spack_root: bool
        lock: str | None
        paths: list[StorePath]

    class Manifest(_Manifest, total=False):
        spack: SpackSection
else:
    EntryType = str
    Entry = StorePath = SpackSection = Manifest = dict


def of_type(value: object, kinds: Union[type, Tuple[type, ...]]) -> bool:
    """VALUE is one of KINDS as JSON means it: a bool counts only where bool is among them (never as a number)."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return isinstance(value, kinds) and (not isinstance(value, bool) or bool in kinds)
