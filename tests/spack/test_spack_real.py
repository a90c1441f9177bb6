"""Against a real Spack (tests/spack/spackbin.py): the lock check, a fake install of the locked environment.

Each forced re-solve takes 30-80 s on 2 cores; these run in CI (CI=true: no Spack fails, never skips).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from .spackbin import LOCK, MANIFEST, REPO, Spack, env_copy, fake_installed_env, run, spack_or_skip

BUILD_ENV = REPO / "scripts" / "build-env.sh"
pytestmark = pytest.mark.spack


@pytest.fixture(scope="module")
def spack() -> Spack:
    return spack_or_skip()


def locked() -> dict:
    return json.loads(LOCK.read_text())


def check_lock(spack: Spack, env_dir: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUILD_ENV), "--check-lock", "--env", str(env_dir), *extra], capture_output=True,
                          text=True, timeout=1800, env={**spack.env, "PARSL_MPI_STACK_LOCK_CACHE": str(cache)})


def changed_lines(stderr: str) -> list[str]:
    """The lines after 'stale: ... changes N specs' (progress lines before it dropped)."""
    lines = stderr.strip().splitlines()
    head = next(i for i, ln in enumerate(lines) if "spack.lock is stale" in ln)
    count = int(re.search(r"changes (\d+) specs", lines[head]).group(1))
    body = lines[head + 1:]
    assert len(body) == count, stderr
    return [ln.strip() for ln in body]


def test_check_lock_accepts_the_committed_lock_forced_then_cached(spack: Spack, tmp_path: Path) -> None:
    env_dir, cache = env_copy(tmp_path / "env"), tmp_path / "cache.json"
    forced = check_lock(spack, env_dir, cache)
    assert forced.returncode == 0, forced.stderr
    assert re.fullmatch(r"build-env: spack\.lock is current \(re-solved in \d+ s: same roots and hashes\)",
                        forced.stdout.strip()), forced.stdout
    started = time.monotonic()
    cached = check_lock(spack, env_dir, cache)
    seconds = time.monotonic() - started
    assert cached.returncode == 0, cached.stderr
    assert "checked before" in cached.stdout and seconds < 15, (cached.stdout, seconds)
    assert (env_dir / "spack.lock").read_bytes() == LOCK.read_bytes()


def test_check_lock_refuses_an_edited_external_one_line_per_changed_spec(spack: Spack, tmp_path: Path) -> None:
    text = MANIFEST.read_text()
    slurm = "- spec: slurm@22.05.8\n        prefix: /usr"
    edited = text.replace(slurm, slurm.replace("22.05.8", "23.02.7").replace("/usr", "/opt/slurm"))
    assert edited != text
    env_dir = env_copy(tmp_path / "env", edited)
    result = check_lock(spack, env_dir, tmp_path / "cache.json")
    assert result.returncode == 1
    lines = changed_lines(result.stderr)
    slurm = next(ln for ln in lines if ln.startswith("changed slurm@22.05.8 "))
    assert "-> @23.02.7 /" in slurm and "version 22.05.8 -> 23.02.7" in slurm
    assert "external path /usr -> /opt/slurm" in slurm
    assert any(ln.startswith("changed openmpi@5.0.8 ") and "(root)" in ln and "dependencies slurm" in ln
               for ln in lines), lines
    assert all(ln.split()[0] in ("changed", "added", "removed", "root") for ln in lines)
    assert (env_dir / "spack.lock").read_bytes() == LOCK.read_bytes()


def test_check_lock_refuses_another_target(spack: Spack, tmp_path: Path) -> None:
    edited = MANIFEST.read_text().replace('"target=x86_64_v3"', '"target=x86_64_v2"')
    assert edited != MANIFEST.read_text()
    result = check_lock(spack, env_copy(tmp_path / "env", edited), tmp_path / "cache.json", "--no-cache")
    assert result.returncode == 1
    lines = changed_lines(result.stderr)
    assert len(lines) >= len(locked()["roots"])
    assert any(ln.startswith("changed openmpi@5.0.8 ") and "target x86_64_v3 -> x86_64_v2" in ln
               for ln in lines), lines


def test_fake_install_of_the_locked_environment_lists_every_root(spack: Spack, tmp_path: Path) -> None:
    env_dir, store = fake_installed_env(spack, tmp_path)
    found = run(spack, "-e", str(env_dir), "find", "--format", "{name}@{version} {hash}")
    assert found.returncode == 0, found.stderr
    listed = {ln.split()[1] for ln in found.stdout.splitlines() if ln.strip()}
    assert {r["hash"] for r in locked()["roots"]} <= listed, found.stdout
    # Every node of the lock that Spack installs (externals are not) is in the store.
    prefixes = run(spack, "-e", str(env_dir), "find", "--format", "{hash} {prefix}", "--deps")
    built = {n for n, node in locked()["concrete_specs"].items() if not node.get("external")}
    in_store = {h for h, p in (ln.split() for ln in prefixes.stdout.splitlines() if ln.strip())
                if p.startswith(str(store))}
    assert built == in_store
    # Prefixes are padded to the length spack.yaml asks, so the tree can be relocated to a longer root.
    root = Path(next(p for h, p in (ln.split() for ln in prefixes.stdout.splitlines() if ln.strip())
                     if h in built))
    assert len(str(root.parent.parent)) == 128
