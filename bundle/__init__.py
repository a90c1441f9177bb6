"""Pack an installed Spack tree into a reproducible, content-addressed bundle, and redeploy it safely.

The API: ``bundle.pack()``, ``bundle.redeploy()``, ``bundle.verify()``, ``bundle.diff()`` (bundle/api.py)
and ``bundle.BundleError``. A ship's target imports this package on a bare Python 3.6 (its __init__ runs
before any submodule), so this file parses there and imports nothing more than the error: the API's
names are looked up on first use (PEP 562), which the target never does.
"""

import importlib
from typing import TYPE_CHECKING

from bundle.errors import BundleError

if TYPE_CHECKING:
    from bundle.api import diff, pack, redeploy, verify

__all__ = ["BundleError", "diff", "pack", "redeploy", "verify"]
_API = frozenset({"diff", "pack", "redeploy", "verify"})


def __getattr__(name):
    # type: (str) -> object
    if name in _API:
        return getattr(importlib.import_module("bundle.api"), name)
    raise AttributeError("module 'bundle' has no attribute " + repr(name))


def __dir__():
    # type: () -> list
    return sorted(set(globals()) | _API)
