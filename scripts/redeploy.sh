#!/usr/bin/env bash
# Redeploy a bundle here, or ship it over ssh with --to: parsl-mpi-bundle redeploy (bundle/__main__.py); --help lists its options.
set -euo pipefail
here=$(dirname "$0")
case "${1:-}" in  # the options are the parser's own: no usage copied here
  -h|--help) echo "usage: scripts/redeploy.sh ARGS...  (the same as: parsl-mpi-bundle redeploy ARGS...)"
             exec "$here/console-script" parsl-mpi-bundle redeploy --help;;
esac
exec "$here/console-script" parsl-mpi-bundle redeploy "$@"
