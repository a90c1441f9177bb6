#!/usr/bin/env bash
# Build the pinned Spack environment (spack.yaml + spack.lock) and put Parsl into conda's base.
# Thin: the load order lives in workflows/environment.py. Safe to re-run (everything is a no-op when done).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
usage="usage: scripts/build-env.sh [--help]  (needs spack on PATH; builds spack.yaml at the repo root as locked)"
case "${1:-}" in
  -h|--help) echo "$usage"; exit 0;;
  "") ;;
  *) echo "$usage" >&2; exit 2;;
esac
command -v spack >/dev/null 2>&1 || { echo "build-env: spack not found on PATH (install Spack 1.0.x and source share/spack/setup-env.sh)" >&2; exit 1; }
cd "$repo"
[ -f spack.lock ] || { echo "build-env: spack.lock missing at $repo (regenerate it: see README, section spack)" >&2; exit 1; }

# Concretize against the lock: it must not change. Keep the committed lock if it would.
backup="$(mktemp)"; trap 'rm -f "$backup"' EXIT
cp spack.lock "$backup"
spack -e . concretize >/dev/null
if ! cmp -s spack.lock "$backup"; then
  cp "$backup" spack.lock
  echo "build-env: spack.lock is stale: spack.yaml or the package repository changed (regenerate: spack -e . concretize --force, then commit)" >&2
  exit 1
fi

spack -e . install --fail-fast

# Parsl goes into conda's base env; PYTHONPATH unset so Spack's site-packages stay out of conda's Python.
conda="$(spack -e . location -i miniconda3)"
env -u PYTHONPATH "$conda/bin/python" -m pip install --no-input --quiet -r env/parsl-requirements.txt

echo "# environment ready; set up shells and workers with (miniconda3 last):"
python="$repo/.venv/bin/python"; [ -x "$python" ] || python=python3
cd "$repo" && env -u PYTHONPATH "$python" -m workflows.environment
