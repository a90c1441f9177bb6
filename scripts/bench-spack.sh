#!/usr/bin/env bash
# Benchmark: spack buildcache against pack + redeploy --relocate (parsl-mpi-bench-spack, spackenv/bench.py; see --help).
set -euo pipefail
exec "$(dirname "$0")/console-script" parsl-mpi-bench-spack "$@"
