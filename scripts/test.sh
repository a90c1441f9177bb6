#!/usr/bin/env bash
# The README's test command: set-up, then pytest (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) echo "usage: scripts/test.sh [PYTEST_ARGS...]  (runs setup.sh, puts its Flux and Spack on PATH, ruff, mypy and the docs build, then pytest on the local cluster)"; exit 0;; esac
scripts/setup.sh
eval "$(.venv/bin/parsl-mpi-upstream env)"   # the set-up's Flux and Spack first on PATH
.venv/bin/ruff check --quiet .
.venv/bin/mypy   # the packages listed in pyproject.toml, all of each
scripts/docs.sh   # warnings are errors: a broken internal link or CLI page fails here
exec .venv/bin/python -m pytest "$@"
