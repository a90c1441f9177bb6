"""The Spack environment's helpers: what makes two spack.lock files the same solve."""
