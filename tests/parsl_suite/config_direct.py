"""Parsl's test suite --config: the project's DirectFluxExecutor (see flux_config)."""

from tests.parsl_suite.flux_config import fresh_config as _fresh_config
from workflows.flux.executor import DirectFluxExecutor


def fresh_config():  # type: ignore[no-untyped-def]  # Parsl's conftest calls it
    return _fresh_config(DirectFluxExecutor)
