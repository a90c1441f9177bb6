#!/usr/bin/env bash
# Benchmark: ship against scp + tar xzf over ssh (parsl-mpi-bench-ship, bundle/benchship.py; see --help).
set -euo pipefail
PARSL_MPI_STACK_PROG=$0 exec "$(dirname "$0")/console-script" parsl-mpi-bench-ship "$@"
