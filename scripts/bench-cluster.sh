#!/usr/bin/env bash
# Benchmark: local-cluster up/down times for 4 and 16 nodes, side by side (see --help).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
python="$top/.venv/bin/python"; [ -x "$python" ] || python=python3
PYTHONPATH="$top${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m localcluster.bench "$@"
