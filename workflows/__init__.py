"""Parsl workflows that launch multi-node MPI runs on Slurm, with verified placement.

The public Python API (workflows/api.py: your own MPI program through a variant) is importable from here,
loaded on first use: `import workflows` stays cheap, and workflows.environment imports without Parsl.
"""

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module that holds it.
PUBLIC = {"Settings": "settings", "SettingsError": "settings", "cancel": "api", "config": "api", "launch_line": "api",
          "loaded": "api", "mpi_run": "submission", "resources": "api", "settings_for": "api", "submit": "api",
          "where_ran": "api"}
__all__ = ["Settings", "SettingsError", "cancel", "config", "launch_line", "loaded", "mpi_run", "resources",
           "settings_for", "submit", "where_ran"]  # PUBLIC's names, spelled out for the linters

if TYPE_CHECKING:
    from .api import cancel, config, launch_line, loaded, resources, settings_for, submit, where_ran
    from .settings import Settings, SettingsError
    from .submission import mpi_run


def __getattr__(name: str) -> Any:
    module = PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
