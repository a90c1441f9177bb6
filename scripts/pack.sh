#!/usr/bin/env bash
# Thin entry point: the logic lives in python -m bundle pack.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) echo "usage: scripts/pack.sh ROOT -o DIR/[NAME] [--with-spack] [--store DIR] [--compression zstd|gzip] [--quiet] [--json]"; exit 0;;
  "") echo "usage: scripts/pack.sh ROOT -o DIR/[NAME] [--with-spack] [--store DIR] [--compression zstd|gzip] [--quiet] [--json]" >&2; exit 2;;
esac
# -o DIR/ writes DIR/bundle-<hash>.tar.zst, -o DIR/NAME writes DIR/NAME-<hash>.tar.zst: the name always carries the hash.
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=python3
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m bundle pack "$@"
