#!/usr/bin/env bash
# A real multi-node Slurm cluster on this machine: up | down | status | env (see --help).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
python="$top/.venv/bin/python"; [ -x "$python" ] || python=python3
PYTHONPATH="$top${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m localcluster "$@"
