#!/usr/bin/env bash
# Build the pinned Spack environment (spack.yaml + spack.lock) and put Parsl into conda's base.
# Thin: lock comparison in spackenv/lock.py, the load order in workflows/environment.py.
# Safe to re-run (everything is a no-op when done).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
usage="usage: scripts/build-env.sh [--check-lock] [--env DIR]  (needs spack on PATH; builds the environment in DIR, default the repo root, as locked; --check-lock only checks that spack.lock is current)"
env_dir="$repo"; check_only=0
while (($#)); do
  case "$1" in
    -h|--help) echo "$usage"; exit 0;;
    --check-lock) check_only=1; shift;;
    --env) [ $# -ge 2 ] || { echo "build-env: --env needs a directory" >&2; exit 2; }; env_dir="$2"; shift 2;;
    *) echo "build-env: unknown argument '$1'" >&2; echo "$usage" >&2; exit 2;;
  esac
done
command -v spack >/dev/null 2>&1 || { echo "build-env: spack not found on PATH (install Spack 1.0.x and source share/spack/setup-env.sh)" >&2; exit 1; }
python="$repo/.venv/bin/python"; [ -x "$python" ] || python=python3
cd "$env_dir"
[ -f spack.lock ] || { echo "build-env: spack.lock missing at $env_dir (regenerate it: see README, section spack)" >&2; exit 1; }

# Concretize against the lock: the solve must not change. The committed lock is kept byte for byte
# (Spack rewrites metadata such as how Spack itself was installed, which is not part of the solve).
backup="$(mktemp)"; trap 'rm -f "$backup"' EXIT
cp spack.lock "$backup"
spack -e . concretize >/dev/null
if ! PYTHONPATH="$repo" "$python" -m spackenv.lock same "$backup" spack.lock >/dev/null; then
  cp "$backup" spack.lock
  echo "build-env: spack.lock is stale: spack.yaml or the package repository changed (regenerate: spack -e . concretize --force, then commit)" >&2
  exit 1
fi
cp "$backup" spack.lock
if ((check_only)); then echo "build-env: spack.lock is current"; exit 0; fi

spack -e . install --fail-fast

# Parsl goes into conda's base env; PYTHONPATH unset so Spack's site-packages stay out of conda's Python.
conda="$(spack -e . location -i miniconda3)"
env -u PYTHONPATH "$conda/bin/python" -m pip install --no-input --quiet -r "$repo/env/parsl-requirements.txt"

echo "# environment ready; set up shells and workers with (miniconda3 last):"
cd "$repo" && env -u PYTHONPATH "$python" -m workflows.environment
