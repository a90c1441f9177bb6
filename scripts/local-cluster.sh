#!/usr/bin/env bash
# A real multi-node Slurm cluster on this machine: up | down | status | env (parsl-mpi-cluster; see --help).
set -euo pipefail
PARSL_MPI_STACK_PROG=$0 exec "$(dirname "$0")/console-script" parsl-mpi-cluster "$@"
