#!/usr/bin/env bash
# Install what the project needs on Debian/Ubuntu, then make .venv. Idempotent: a second run takes seconds.
set -euo pipefail
usage() { echo "usage: scripts/setup.sh [--help]  (installs system packages with apt-get and creates .venv)"; }
case "${1:-}" in -h|--help) usage; exit 0;; "") ;; *) echo "setup.sh: unknown argument '$1'" >&2; usage >&2; exit 2;; esac
cd "$(dirname "$0")/.."

packages=(slurm-wlm munge openmpi-bin libopenmpi-dev mpich libmpich-dev gcc make iproute2 procps psmisc util-linux patchelf zstd pigz file)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || { echo "setup.sh: apt-get not found; install by hand: ${missing[*]}" >&2; exit 1; }
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's mpich registers mpicc/mpirun as alternatives; Open MPI is the project's default MPI.
if [ -x /usr/bin/mpicc.openmpi ] && [ "$(readlink -f /usr/bin/mpicc)" != "$(readlink -f /usr/bin/mpicc.openmpi)" ]; then
  for alt in mpi mpirun; do
    target=$(update-alternatives --list "$alt" 2>/dev/null | grep -m1 openmpi || true)
    [ -z "$target" ] || ${sudo:-} update-alternatives --set "$alt" "$target" >/dev/null
  done
fi

python=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,flux]'
  echo "$want" > "$stamp"
fi
