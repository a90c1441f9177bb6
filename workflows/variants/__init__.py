"""The executor variants: one small class each (base.Variant), one registry every other place reads.

Adding a variant is one new file with a Variant subclass, plus its line in REGISTRY below.
"""

from __future__ import annotations

import dataclasses

from ..launchers import DEFAULT_LAUNCHER
from ..settings import PROJECT, Settings
from .base import Variant
from .flux import Flux
from .htex import Htex
from .mpi import Mpi
from .static import Static

REGISTRY: dict[str, Variant] = {v.name: v for v in (Htex(), Static(), Mpi(), Flux())}


def get(name: str) -> Variant:
    return REGISTRY[name]


@dataclasses.dataclass(frozen=True)
class Choice:
    """One way to run the workflow: a variant, and the launcher when the variant has several."""

    label: str  # `mpi`, `mpi/flux`: the variant's first launcher is its plain name
    variant: str
    launcher: str | None = None

    @property
    def args(self) -> list[str]:
        """run.py's arguments for it."""
        return [self.variant, *(["--launcher", self.launcher] if self.launcher else [])]


def choices() -> list[Choice]:
    """Every variant with each of its launchers: what the demo, the benchmark and the tests run."""
    out: list[Choice] = []
    for v in REGISTRY.values():
        if not v.launchers:
            out.append(Choice(v.name, v.name))
        for i, launcher in enumerate(v.launchers):
            out.append(Choice(v.name if i == 0 else f"{v.name}/{launcher}", v.name, launcher))
    return out


def unavailable(choice: Choice, run_dir: str = "runs") -> str | None:
    """Why this choice cannot run on this machine (one line), or None."""
    s = Settings(variant=choice.variant, run_dir=PROJECT / run_dir, launcher=choice.launcher or DEFAULT_LAUNCHER)
    return REGISTRY[choice.variant].unavailable(s)
