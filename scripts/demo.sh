#!/usr/bin/env bash
# The README's main command: set-up, local cluster up, the MPI hello world across all nodes, results, down.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) echo "usage: scripts/demo.sh  (set-up, local cluster up, MPI hello world, cluster down)"; exit 0;; esac
scripts/setup.sh
trap 'scripts/local-cluster.sh down -q >/dev/null' EXIT
scripts/local-cluster.sh up
eval "$(scripts/local-cluster.sh env)"
mkdir -p .state/demo
mpicc -o .state/demo/mpi_hello workflows/mpi_hello.c
echo "srun -N4 -n8 --mpi=pmix: which rank answered from which node"
srun -N4 -n8 --mpi=pmix .state/demo/mpi_hello | sort -t, -k2 -V
