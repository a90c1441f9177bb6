#!/usr/bin/env bash
# Thin entry point: the logic lives in python -m bundle.bench.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) echo "usage: scripts/bench-bundle.sh [--size-mb N] [--files N] [--workdir DIR] [--repeat N]  (tar czf/xzf vs pack/redeploy, side by side)"; exit 0;;
esac
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=python3
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m bundle.bench "$@"
