"""Pinned upstream builds (Flux, Spack) into a prefix outside the checkout, from upstream or a source mirror."""
