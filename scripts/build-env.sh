#!/usr/bin/env bash
# Build the pinned Spack environment (spack.yaml + spack.lock) and put Parsl into conda's base.
# Thin: the lock check is spackenv/check.py (a forced re-solve in a temporary copy, cached by the digest
# of its inputs), the load order is workflows/environment.py (both run as console scripts). Safe to re-run (a no-op when done).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
usage="usage: scripts/build-env.sh [--check-lock [--no-cache]] [--env DIR]
  Builds the environment in DIR (default: the repo root) as spack.lock says, after checking that a forced
  re-solve of spack.yaml gives the lock (roots and every hash; a check that passed is cached by the digest
  of its inputs). --check-lock: only the check, one line per changed spec when stale. --no-cache: re-solve.
  Needs spack on PATH (yours, or the set-up's: eval \"\$(python3 -m upstream env)\")."
env_dir="$repo"; check_only=0; cache_args=()
while (($#)); do
  case "$1" in
    -h|--help) echo "$usage"; exit 0;;
    --check-lock) check_only=1; shift;;
    --no-cache) cache_args=(--no-cache); shift;;
    --env) [ $# -ge 2 ] || { echo "build-env: --env needs a directory" >&2; exit 2; }; env_dir="$2"; shift 2;;
    *) echo "build-env: unknown argument '$1'" >&2; echo "$usage" >&2; exit 2;;
  esac
done
command -v spack >/dev/null 2>&1 || { echo "build-env: spack not found on PATH (install Spack 1.0.x, or the project's: python3 -m upstream install spack, then eval \"\$(python3 -m upstream env)\")" >&2; exit 1; }
[ -d "$env_dir" ] || { echo "build-env: no such directory: $env_dir" >&2; exit 2; }
env_dir="$(cd "$env_dir" && pwd)"

# The committed lock is never written: the check re-solves in a temporary copy.
"$repo/scripts/console-script" parsl-mpi-spack-check --env "$env_dir" --spack "$(command -v spack)" "${cache_args[@]}"
if ((check_only)); then exit 0; fi

cd "$env_dir"
spack -e . install --fail-fast

# Parsl goes into conda's base env; PYTHONPATH unset so Spack's site-packages stay out of conda's Python.
conda="$(spack -e . location -i miniconda3)"
env -u PYTHONPATH "$conda/bin/python" -m pip install --no-input --quiet -r "$repo/env/parsl-requirements.txt"
# pip writes some scripts (dill's get_gprof, ...) with conda's whole padded prefix as their shebang, longer
# than the 127 bytes the kernel reads (and than a relocating redeploy accepts): Spack's own sbang fixes them,
# as Spack does after each install.
BUILD_ENV_BIN="$conda/bin" spack -e . python -c \
  'import os, spack.hooks.sbang as s; s.filter_shebangs_in_directory(os.environ["BUILD_ENV_BIN"])'

echo "# environment ready; set up shells and workers with (miniconda3 last):"
env -u PYTHONPATH "$repo/scripts/console-script" parsl-mpi-environment
