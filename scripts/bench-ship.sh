#!/usr/bin/env bash
# Thin entry point: the logic lives in python -m bundle.benchship (ship against scp + tar xzf, over ssh).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) echo "usage: scripts/bench-ship.sh [--host n1] [--size-mb 200] [--files 10000] [--packages 50]  (after eval \"\$(scripts/local-cluster.sh env)\")"; exit 0;;
esac
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=python3
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m bundle.benchship "$@"
