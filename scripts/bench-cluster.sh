#!/usr/bin/env bash
# Benchmark: local-cluster up/down times for 4 and 16 nodes, side by side (parsl-mpi-bench-cluster; see --help).
set -euo pipefail
PARSL_MPI_STACK_PROG=$0 exec "$(dirname "$0")/console-script" parsl-mpi-bench-cluster "$@"
