"""The run's second step: the variant's Parsl Config for its settings, with Parsl's monitoring when asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .monitoring import DATABASE
from .settings import Settings
from .variants.base import Variant

if TYPE_CHECKING:
    from parsl.config import Config
    from parsl.monitoring import MonitoringHub


def config(s: Settings, variant: Variant, monitored: bool = False) -> Config:
    """This process ready for the variant (e.g. Flux's bindings importable), then its Config; monitored:
    Parsl's MonitoringHub records the run in RUN_DIR/monitoring.db (its processes end with the DFK)."""
    variant.prepare(s)
    built = variant.config(s)
    if monitored:
        built.monitoring = hub(s)
    return built


def hub(s: Settings) -> MonitoringHub:
    """Parsl's MonitoringHub with the run's database (what workflows/monitoring.py reads back after the run);
    the workflow is named after the variant, versioned by tag."""
    from parsl.monitoring import MonitoringHub

    return MonitoringHub(logging_endpoint=f"sqlite:///{(s.run_dir / DATABASE).absolute()}",
                         workflow_name=f"{s.variant}/{s.rank_launcher}", workflow_version=s.tag)
