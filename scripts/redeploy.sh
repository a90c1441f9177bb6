#!/usr/bin/env bash
# Thin entry point: the logic lives in python -m bundle redeploy.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) echo "usage: scripts/redeploy.sh BUNDLE [--prefix TARGET [--relocate]] [--prune] [--wait] [--profile] [--quiet] [--json]"; exit 0;;
  "") echo "usage: scripts/redeploy.sh BUNDLE [--prefix TARGET [--relocate]] [--prune] [--wait] [--profile] [--quiet] [--json]" >&2; exit 2;;
esac
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=python3
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m bundle redeploy "$@"
