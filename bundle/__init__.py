"""Pack an installed Spack tree into a reproducible, content-addressed bundle, and redeploy it safely."""

from bundle.manifest import BundleError

__all__ = ["BundleError"]
