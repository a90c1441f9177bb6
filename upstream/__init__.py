"""Pinned upstream builds (Flux, Spack) into a prefix outside the checkout, from upstream or a source mirror."""

from upstream.pythons import require_login_python

require_login_python()  # python -m upstream runs on the system python3: older than 3.9 gets one line
