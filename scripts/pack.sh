#!/usr/bin/env bash
# Pack an installed Spack tree into a reproducible bundle: parsl-mpi-bundle pack (bundle/__main__.py); --help lists its options.
set -euo pipefail
here=$(dirname "$0")
case "${1:-}" in  # the options are the parser's own: no usage copied here
  -h|--help) echo "usage: scripts/pack.sh ARGS...  (the same as: parsl-mpi-bundle pack ARGS...)"
             exec "$here/console-script" parsl-mpi-bundle pack --help;;
esac
exec "$here/console-script" parsl-mpi-bundle pack "$@"
