"""pytest plugin (-p tests.parsl_suite.direct_as_stock) for Parsl's test_flux.py under DirectFluxExecutor.

test_flux.py's tests make their executor themselves (`FluxExecutor()`, run with --config local), from
parsl.executors.flux.executor: this binds that name to DirectFluxExecutor before the test module is
collected, so the same tests exercise the project's executor. Nothing else of Parsl changes.
"""

from __future__ import annotations

import parsl.executors.flux.executor as stock

from workflows.flux.executor import DirectFluxExecutor

stock.FluxExecutor = DirectFluxExecutor  # type: ignore[misc]
