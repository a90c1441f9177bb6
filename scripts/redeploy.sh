#!/usr/bin/env bash
# Thin entry point: the logic lives in python -m bundle redeploy (--to ships over ssh: bundle/ship.py).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) echo "usage: scripts/redeploy.sh BUNDLE|HOST:PATH [--prefix TARGET [--relocate]] | BUNDLE --to [USER@]HOST:PREFIX [--relocate] [--ssh CMD]  [--prune] [--wait] [--profile] [--quiet] [--json]"; exit 0;;
  "") echo "usage: scripts/redeploy.sh BUNDLE|HOST:PATH [--prefix TARGET [--relocate]] | BUNDLE --to [USER@]HOST:PREFIX [--relocate] [--ssh CMD]  [--prune] [--wait] [--profile] [--quiet] [--json]" >&2; exit 2;;
esac
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=python3
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m bundle redeploy "$@"
