#!/usr/bin/env bash
# Thin entry point: the logic lives in python -m spackenv.bench.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) echo "usage: scripts/bench-spack.sh [--workdir DIR] [--keep] [--json]  (spack buildcache push + install --cache-only vs pack + redeploy --relocate, on the fake-installed locked environment, side by side; needs spack on PATH or python -m upstream install spack)"; exit 0;;
esac
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=python3
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m spackenv.bench "$@"
