#!/usr/bin/env bash
# Benchmark: losing a block's first node, kill to last run verified per variant (parsl-mpi-bench-loss; see --help).
set -euo pipefail
PARSL_MPI_STACK_PROG=$0 exec "$(dirname "$0")/console-script" parsl-mpi-bench-loss "$@"
