#!/usr/bin/env bash
# The README's main command: set-up, local cluster up, the MPI hello world through every workflow
# variant this machine can run, one summary table, cluster down.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) echo "usage: scripts/demo.sh  (set-up, local cluster up, every workflow variant, summary, cluster down)"; exit 0;; esac
scripts/setup.sh
trap 'scripts/local-cluster.sh down -q >/dev/null' EXIT
scripts/local-cluster.sh up
eval "$(scripts/local-cluster.sh env)"
PARSL_MPI_STACK_PROG=$0 .venv/bin/parsl-mpi-demo --no-spack
