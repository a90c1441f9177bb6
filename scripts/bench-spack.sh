#!/usr/bin/env bash
# Benchmark: spack buildcache against pack + redeploy --relocate (parsl-mpi-bench-spack, spackenv/bench.py; see --help).
set -euo pipefail
PARSL_MPI_STACK_PROG=$0 exec "$(dirname "$0")/console-script" parsl-mpi-bench-spack "$@"
