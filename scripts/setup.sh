#!/usr/bin/env bash
# Install what the project needs on Debian/Ubuntu, make .venv, then build the pinned Flux and Spack once per
# machine (python3 -m upstream: from $PARSL_MPI_STACK_SOURCES or upstream, into $PARSL_MPI_STACK_PREFIX).
# Idempotent: a second run takes seconds. With CI=true, sources that cannot be reached are an error.
set -euo pipefail
usage() { echo "usage: scripts/setup.sh [--help]  (apt-get packages, .venv, then Flux and Spack built once outside the checkout)"; }
case "${1:-}" in -h|--help) usage; exit 0;; "") ;; *) echo "setup.sh: unknown argument '$1'" >&2; usage >&2; exit 2;; esac
cd "$(dirname "$0")/.."

packages=(python3-venv slurm-wlm munge openmpi-bin libopenmpi-dev mpich libmpich-dev gcc make iproute2 procps psmisc util-linux openssh-server openssh-client patchelf zstd pigz file git
  # building flux-core and flux-sched (upstream/flux.py)
  g++ autoconf automake libtool pkg-config cmake libzmq3-dev uuid-dev libjansson-dev liblz4-dev libarchive-dev
  libhwloc-dev libsqlite3-dev lua5.1 liblua5.1-0-dev lua-posix libboost-dev libboost-graph-dev libedit-dev libyaml-cpp-dev
  # run.py --monitoring --screenshot and the monitoring tests look at parsl-visualize in a headless browser
  chromium)
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
  .venv/bin/python -m pip install -q -e '.[test,flux,monitoring,docs]'
  echo "$want" > "$stamp"
fi

require=(); case "${CI:-}" in true|1|yes) require=(--require);; esac
.venv/bin/parsl-mpi-upstream install "${require[@]}"
