#!/usr/bin/env bash
# Benchmark: tar czf/xzf against pack/redeploy, side by side (parsl-mpi-bench-bundle, bundle/bench.py; see --help).
set -euo pipefail
PARSL_MPI_STACK_PROG=$0 exec "$(dirname "$0")/console-script" parsl-mpi-bench-bundle "$@"
