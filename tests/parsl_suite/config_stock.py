"""Parsl's test suite --config: Parsl's own FluxExecutor (see flux_config)."""

from parsl.executors import FluxExecutor

from tests.parsl_suite.flux_config import fresh_config as _fresh_config


def fresh_config():  # type: ignore[no-untyped-def]  # Parsl's conftest calls it
    return _fresh_config(FluxExecutor)
