#!/usr/bin/env bash
# Benchmark: workflow variants against raw Slurm on the local cluster (see --help). Brings the cluster up and down.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) exec .venv/bin/python -m workflows.bench --help;; esac
scripts/setup.sh
trap 'scripts/local-cluster.sh down -q >/dev/null' EXIT
scripts/local-cluster.sh up -q
eval "$(scripts/local-cluster.sh env)"
.venv/bin/python -m workflows.bench "$@"
