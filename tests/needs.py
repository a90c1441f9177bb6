"""Tests that need Flux or Spack: skipped with a one-line reason outside CI, failed in CI (CI=true).

A CI where the set-up could not provide them must not pass by skipping them.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(missing: str | None) -> None:
    """Skip (or, in CI, fail) the calling test when `missing` says what is missing."""
    if missing is None:
        return
    if in_ci():
        pytest.fail(f"CI must run this test, but: {missing}")
    pytest.skip(missing)
