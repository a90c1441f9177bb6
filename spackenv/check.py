"""Is spack.lock what spack.yaml solves to today? A forced re-solve in a temporary copy, compared with the lock.

Reading the lock (`spack -e . concretize`) never re-solves, so it cannot see an edited external (Slurm's
version or prefix), target or package repository. This re-solves (`concretize --force`) in a copy of
spack.yaml and spack.lock, compares roots and every node's hash with the lock (spackenv.lock), and says
which specs changed, one line each; the committed lock is never written.

A solve takes 30-80 s, so a check that passed is remembered by the digest of everything the solve
depends on: spack.yaml, the lock's solve, Spack's version and commit, the configuration Spack merges
from all its scopes (packages, concretizer, repos, config), each package repository's path, git commit
and uncommitted changes, and the host (architecture, libc). The same digest again answers in seconds.
A repository that is not a git work tree is never cached (its recipes could change unseen).

    python -m spackenv.check [--env DIR] [--spack SPACK] [--no-cache] [--cache FILE]
    exit 0: current; 1: stale (one line per changed spec) or Spack failed; 2: bad input
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import projectdir
from projectdir import cli

from . import lock as spack_lock
from .errors import SpackenvError

CACHE_ENV = "PARSL_MPI_STACK_LOCK_CACHE"
CACHE_NAME = "spack-lock-check.json"
KEEP = 50  # digests remembered
PROG = "build-env"
REGENERATE = "regenerate: spack -e . concretize --force, then commit spack.lock"

# Run by `spack -e COPY python`: what the solve depends on besides spack.yaml and the lock.
INPUTS_SCRIPT = r"""
import json, os, platform, subprocess, sys
import spack, spack.config, spack.repo, spack.spec
def git(root, *args):
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=60,
                              check=True).stdout
    except Exception:
        return None
repos = []
for repo in spack.repo.PATH.repos:
    head = git(repo.root, "rev-parse", "HEAD")
    dirty = git(repo.root, "status", "--porcelain", "--untracked-files=no", ".") if head else None
    repos.append({"namespace": repo.namespace, "root": os.path.realpath(repo.root),
                  "commit": head and head.strip(), "changes": dirty})
json.dump({"spack": spack.spack_version, "spack_commit": spack.get_spack_commit(),
           "config": {s: spack.config.get(s) for s in ("packages", "concretizer", "repos", "config")},
           "repos": repos, "host": str(spack.spec.ArchSpec.default_arch()),
           "libc": list(platform.libc_ver())}, sys.stdout, sort_keys=True, default=str)
"""


class CheckError(SpackenvError, RuntimeError):
    """The check could not run; the message is one line."""


class SpackNotFound(CheckError):
    """No spack command to check with: nothing done (exit 2)."""

    refused = True


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _ticking(what: str) -> Iterator[None]:
    """Progress on stderr while a long step runs: elapsed seconds (each second on a tty, else every 15 s)."""
    tty = sys.stderr.isatty()
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(1.0 if tty else 15.0):
            line = f"{PROG}: {what}: {time.monotonic() - started:.0f} s"
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _spack(spack: str, env_dir: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([spack, "-e", str(env_dir), *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CheckError(f"cannot run {spack}: {err}") from None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def inputs(spack: str, copy: Path) -> dict:
    """What the solve depends on besides spack.yaml and the lock, as Spack itself sees it."""
    script = copy / "inputs.py"
    script.write_text(INPUTS_SCRIPT)
    result = _spack(spack, copy, "python", str(script), timeout=600)
    if result.returncode != 0:
        raise CheckError(f"spack could not read its configuration: {_last_line(result.stderr)}")
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise CheckError(f"spack python printed no JSON: {_last_line(result.stdout)}") from None


def digest(manifest: str, lock: dict, seen: dict) -> str | None:
    """The digest of one solve's inputs, or None when they cannot be pinned down (a repo outside git)."""
    if any(not r.get("commit") for r in seen.get("repos", [])):
        return None
    roots, nodes = spack_lock.solve(lock)
    payload = {"spack.yaml": manifest, "roots": sorted(roots), "nodes": sorted(nodes), "inputs": seen}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(path: Path, key: str, seconds: float) -> None:
    cached = _read_cache(path)
    cached[key] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "solve_seconds": round(seconds, 1)}
    cached = dict(sorted(cached.items(), key=lambda kv: kv[1].get("when", ""))[-KEEP:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=1, sort_keys=True) + "\n")
        tmp.replace(path)
    except OSError as err:  # a cache that cannot be written only costs the next check a solve
        _say(f"note: cannot record the solve in {path}: {err}")


def check(env_dir: Path, spack: str, cache: Path | None) -> list[str]:
    """[] when the lock is current, else one line per changed spec. Raises CheckError when it cannot tell."""
    manifest_path, lock_path = env_dir / "spack.yaml", env_dir / "spack.lock"
    for path in (manifest_path, lock_path):
        if not path.is_file():
            raise CheckError(f"{path} not found" + (f" ({REGENERATE})" if path == lock_path else ""))
    manifest = manifest_path.read_text()
    try:
        locked = json.loads(lock_path.read_text())
    except ValueError as err:
        raise CheckError(f"{lock_path} is not JSON: {err}") from None
    with tempfile.TemporaryDirectory(prefix="spack-lock-check-") as tmp:
        copy = Path(tmp)
        shutil.copy(manifest_path, copy / "spack.yaml")
        shutil.copy(lock_path, copy / "spack.lock")
        key = None
        if cache is not None:
            key = digest(manifest, locked, inputs(spack, copy))
            if key is not None and key in _read_cache(cache):
                print(f"{PROG}: spack.lock is current (same inputs as a solve checked before, {key[:12]}; "
                      f"--no-cache re-solves)")
                return []
        started = time.monotonic()
        with _ticking("re-solving spack.yaml in a temporary copy (concretize --force, 30-80 s)"):
            result = _spack(spack, copy, "concretize", "--force")
        seconds = time.monotonic() - started
        if result.returncode != 0:
            raise CheckError(f"spack.yaml does not solve: {_last_line(result.stderr)}")
        try:
            fresh = json.loads((copy / "spack.lock").read_text())
        except (OSError, ValueError) as err:
            raise CheckError(f"the re-solve wrote no readable lock: {err}") from None
    diff = spack_lock.differences(locked, fresh)
    if not diff:
        if cache is not None and key is not None:
            _remember(cache, key, seconds)
        print(f"{PROG}: spack.lock is current (re-solved in {seconds:.0f} s: same roots and hashes)")
    return diff


def default_cache(env: Path) -> Path:
    """$PARSL_MPI_STACK_LOCK_CACHE, else .state/ of the checkout holding the environment (projectdir), else the
    per-user cache (an installed wheel checking a folder outside any checkout)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    checkout = projectdir.find(cwd=env)
    if checkout is not None:
        return checkout / ".state" / CACHE_NAME
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "parsl-mpi-stack" / CACHE_NAME


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--env", type=Path, default=Path.cwd(), help="the folder of spack.yaml and spack.lock")
    p.add_argument("--spack", default="spack", help="the spack command (default: spack on PATH)")
    p.add_argument("--no-cache", action="store_true", help="always re-solve, even for inputs checked before")
    p.add_argument("--cache", type=Path,
                   help=f"where passed checks are remembered (default ${CACHE_ENV}, else .state/{CACHE_NAME} in "
                        f"the checkout, else ~/.cache/parsl-mpi-stack/{CACHE_NAME})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-spack-check: 0 current, 1 stale or the check failed, 2 refused."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    if shutil.which(args.spack) is None:
        raise SpackNotFound(f"spack not found ({args.spack})")
    cache = None if args.no_cache else args.cache or default_cache(args.env)
    diff = check(args.env, args.spack, cache)
    if diff:
        _say(f"spack.lock is stale: a forced re-solve of spack.yaml changes {len(diff)} specs ({REGENERATE}):")
        for line in diff:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
