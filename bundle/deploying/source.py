"""Where a redeploy reads the bundle from: a file here. A ship's target (shipping/remote.py) and a bundle
pulled over ssh (shipping/ship.py) are Sources of their own."""

from pathlib import Path
from typing import Callable, List, Optional, Tuple

from bundle.deploying.plan import Plan
from bundle.format.records import Manifest, StorePath
from bundle.reading import reader


class Source:
    """A bundle file, read twice: the manifest, then the members of the store paths to write."""

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
