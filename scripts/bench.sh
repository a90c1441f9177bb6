#!/usr/bin/env bash
# Benchmark: workflow variants against raw Slurm on the local cluster (see --help). Brings the cluster up and down.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) PARSL_MPI_STACK_PROG=$0 exec scripts/console-script parsl-mpi-bench --help;; esac
scripts/setup.sh
# a cluster of its own (not the default one demo.sh and users bring up), outside the test clusters' slots
cluster=(--root .state/bench-cluster --bridge slwfb0 --subnet 10.247.0.0/24 --prefix slwfb- --ctld-port 16700 --slurmd-port 16701)
trap 'scripts/local-cluster.sh down -q "${cluster[@]}" >/dev/null' EXIT
scripts/local-cluster.sh up -q "${cluster[@]}"
eval "$(scripts/local-cluster.sh env "${cluster[@]}")"
PARSL_MPI_STACK_PROG=$0 .venv/bin/parsl-mpi-bench "$@"
