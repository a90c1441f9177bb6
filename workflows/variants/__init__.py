"""The executor variants: one small class each (base.Variant), one registry every other place reads.

Adding a variant is one new file with a Variant subclass, plus its line in REGISTRY below.
"""

from __future__ import annotations

from .base import Variant
from .flux import Flux
from .htex import Htex
from .mpi import Mpi
from .static import Static

REGISTRY: dict[str, Variant] = {v.name: v for v in (Htex(), Static(), Mpi(), Flux())}


def get(name: str) -> Variant:
    return REGISTRY[name]


def runs() -> list[tuple[str, list[str]]]:
    """Every (label, run.py arguments) to demo or benchmark: each variant with each of its launchers."""
    out: list[tuple[str, list[str]]] = []
    for v in REGISTRY.values():
        if not v.launchers:
            out.append((v.name, [v.name]))
        for i, launcher in enumerate(v.launchers):
            out.append((v.name if i == 0 else f"{v.name}/{launcher}", [v.name, "--launcher", launcher]))
    return out
