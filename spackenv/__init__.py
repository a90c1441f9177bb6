"""The Spack environment's helpers: what makes two spack.lock files the same solve."""

from upstream.pythons import require_login_python

require_login_python()  # python -m spackenv.check runs on the system python3: older than 3.9 gets one line
