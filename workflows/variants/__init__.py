"""The executor variants: one small class each (base.Variant), one registry every other place reads.

Adding a variant is one new file with a Variant subclass, plus its line in REGISTRY below. Which
variant goes with which rank launcher is checked here (checked()), not in Settings: Settings is
imported by every variant, so it cannot look the registry up without an import circle.
"""

from __future__ import annotations

import dataclasses

from ..settings import PROJECT, Settings, SettingsError
from .base import Option, Variant
from .flux import Flux
from .htex import Htex
from .mpi import Mpi
from .static import Static

REGISTRY: dict[str, Variant] = {v.name: v for v in (Htex(), Static(), Mpi(), Flux())}


def get(name: str) -> Variant:
    return REGISTRY[name]


def checked(s: Settings) -> Variant:
    """The variant of these settings, which must exist and have their rank launcher; else SettingsError (one line)."""
    variant = REGISTRY.get(s.variant)
    if variant is None:
        raise SettingsError(f"unknown variant {s.variant!r} (choose from {', '.join(REGISTRY)})")
    if s.rank_launcher not in variant.rank_launchers:
        users = [v.name for v in REGISTRY.values() if s.rank_launcher in v.rank_launchers]
        raise SettingsError(f"--launcher {s.rank_launcher}: the {variant.name} variant launches with "
                            f"{', '.join(variant.rank_launchers)} only ({s.rank_launcher} is for: {', '.join(users)})")
    problem = variant.option_problem(s)
    if problem:
        raise SettingsError(problem)
    return variant


def options() -> list[tuple[Variant, Option]]:
    """Every variant's own options, with the variant declaring each (what the CLI adds, once each)."""
    return [(v, o) for v in REGISTRY.values() for o in v.options]


def options_in(argv: list[str]) -> tuple[tuple[str, str], ...]:
    """Settings.variant_options of a run command's arguments (`["flux", "--flux-wrapper", "parsl"]`)."""
    return tuple((o.field, argv[argv.index(o.flag) + 1]) for _, o in options() if o.flag in argv[:-1])


def given_options(values: dict[str, object]) -> tuple[tuple[str, str], ...]:
    """Settings.variant_options from parsed arguments: the declared options that were given (not None)."""
    return tuple((o.field, str(values[o.field])) for _, o in options() if values.get(o.field) is not None)


def label(variant: str, rank_launcher: str) -> str:
    """What ran, in one word: `mpi`, `mpi/flux`; a variant's first rank launcher goes by the variant's plain name."""
    return variant if rank_launcher == REGISTRY[variant].rank_launchers[0] else f"{variant}/{rank_launcher}"


@dataclasses.dataclass(frozen=True)
class Choice:
    """One way to run the workflow: a variant and one of its rank launchers."""

    label: str  # `mpi`, `mpi/flux`: see label()
    variant: str
    rank_launcher: str

    @property
    def args(self) -> list[str]:
        """The run command's arguments for it (--launcher only where the variant has several)."""
        several = len(REGISTRY[self.variant].rank_launchers) > 1
        return [self.variant, *(["--launcher", self.rank_launcher] if several else [])]


def choices() -> list[Choice]:
    """Every variant with each of its rank launchers: what the demo, the benchmark and the tests run."""
    return [Choice(label(v.name, launcher), v.name, launcher)
            for v in REGISTRY.values() for launcher in v.rank_launchers]


def unavailable(choice: Choice, run_dir: str = "runs") -> str | None:
    """Why this choice cannot run on this machine (one line), or None."""
    s = Settings(variant=choice.variant, run_dir=PROJECT / run_dir, rank_launcher=choice.rank_launcher)
    return REGISTRY[choice.variant].unavailable(s)
