"""Fixtures for the workflow tests: Flux present (or, outside CI, a skip that says why)."""

from __future__ import annotations

import pytest

from workflows.flux import instance

from ..needs import require


@pytest.fixture
def flux_ready() -> None:
    """Flux on PATH and its bindings importable by this Python (the check run.py makes before submitting)."""
    require(instance.missing(bindings=True))
