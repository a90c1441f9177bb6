"""Pack an installed Spack tree into a reproducible, content-addressed bundle, and redeploy it safely."""

from bundle.errors import BundleError

__all__ = ["BundleError"]
