"""The Spack environment: spack.yaml pins, spack.lock consistency, Parsl pins, build-env.sh.

Only the last concretize check needs Spack; it is skipped with a reason when absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from spackenv import lock as spack_lock

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "spack.yaml"
LOCK = REPO / "spack.lock"
REQUIREMENTS = REPO / "env" / "parsl-requirements.txt"
BUILD_ENV = REPO / "scripts" / "build-env.sh"
DETECTED_LIBC = {"glibc", "musl"}
PINNED = ("flux-core", "flux-sched", "openmpi", "miniconda3")
EXACT = re.compile(r"@=?(\d+(\.\d+)*)(?=[\s+~^%]|$)")


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())["spack"]


def lock() -> dict:
    return json.loads(LOCK.read_text())


def name_of(spec: str) -> str:
    return re.split(r"[@%+~^\s]", spec.strip(), maxsplit=1)[0]


def pins() -> dict[str, str]:
    out = {}
    for spec in manifest()["specs"]:
        m = EXACT.search(spec)
        out[name_of(spec)] = m.group(1) if m else ""
    return out


def test_manifest_parses_with_specs() -> None:
    spack = manifest()
    assert spack["specs"], "spack.yaml lists no specs"
    assert spack["concretizer"]["unify"] is True
    assert spack["concretizer"]["reuse"] is False


def test_every_spec_is_pinned_exactly() -> None:
    for spec in manifest()["specs"]:
        m = EXACT.search(spec)
        assert m, f"{spec!r} has no exact version"
        assert not re.search(r"@[^\s]*:", spec), f"{spec!r} pins a range, not a version"
    assert set(PINNED) | {"python"} <= set(pins())


def test_slurm_and_compiler_are_externals() -> None:
    packages = manifest()["packages"]
    assert packages["slurm"]["buildable"] is False
    assert packages["slurm"]["externals"]
    assert packages["gcc"]["externals"]


def test_lock_is_json_v6() -> None:
    assert lock()["_meta"]["lockfile-version"] == 6


def test_lock_roots_equal_manifest_specs() -> None:
    roots = {r["spec"] for r in lock()["roots"]}
    assert roots == set(manifest()["specs"])


def test_every_dependency_hash_resolves() -> None:
    data = lock()
    nodes = data["concrete_specs"]
    for root in data["roots"]:
        assert root["hash"] in nodes, f"root {root['spec']} missing from concrete_specs"
    for h, node in nodes.items():
        for dep in node.get("dependencies", []):
            assert dep["hash"] in nodes, f"{node['name']} ({h}) depends on unknown hash {dep['hash']}"


def test_externals_prefixes_match_manifest() -> None:
    declared = {
        name: {e["prefix"] for e in cfg.get("externals", [])}
        for name, cfg in manifest()["packages"].items()
    }
    nodes = lock()["concrete_specs"].values()
    externals = [n for n in nodes if n.get("external")]
    assert {n["name"] for n in externals} >= {"slurm", "gcc"}
    for node in externals:
        if node["name"] in DETECTED_LIBC:
            continue  # Spack detects the host's libc itself; spack.yaml does not declare it
        assert node["external"]["path"] in declared.get(node["name"], set()), node["name"]
    for node in nodes:  # declared externals are never built (buildable: false)
        if node["name"] in declared and declared[node["name"]]:
            assert node.get("external"), f"{node['name']} was concretized to be built"


def test_locked_versions_equal_pins() -> None:
    wanted = pins()
    nodes = lock()["concrete_specs"].values()
    for name in PINNED:
        versions = {n["version"] for n in nodes if n["name"] == name}
        assert versions == {wanted[name]}, f"{name}: locked {versions}, pinned {wanted[name]}"


def test_parsl_requirements_pin_exact_versions() -> None:
    lines = [
        ln.split("#")[0].strip() for ln in REQUIREMENTS.read_text().splitlines()
    ]
    reqs = [ln for ln in lines if ln]
    assert any(r.lower().startswith("parsl==") for r in reqs)
    for req in reqs:
        assert re.fullmatch(r"[A-Za-z0-9._-]+(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+", req), req


def test_build_env_without_spack_is_one_line_error(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        [str(bin_dir / "bash"), str(BUILD_ENV)], env={"PATH": str(bin_dir)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "spack not found" in result.stderr


def test_build_env_help() -> None:
    result = subprocess.run([str(BUILD_ENV), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage" in result.stdout


@pytest.mark.skipif(shutil.which("spack") is None, reason="spack not on PATH: cannot check the lock is current")
def test_lock_is_current(tmp_path: Path) -> None:
    for path in (MANIFEST, LOCK):
        shutil.copy(path, tmp_path / path.name)
    env = dict(os.environ)
    result = subprocess.run(
        ["spack", "-e", str(tmp_path), "concretize"], capture_output=True, text=True,
        timeout=1800, env=env,
    )
    assert result.returncode == 0, result.stderr
    after = json.loads((tmp_path / "spack.lock").read_text())
    assert {r["hash"] for r in after["roots"]} == {r["hash"] for r in lock()["roots"]}
    assert "Concretized" not in result.stdout, result.stdout


NEEDS_SPACK = pytest.mark.skipif(shutil.which("spack") is None,
                                 reason="spack not on PATH: cannot run build-env.sh's lock check")


def env_copy(tmp_path: Path, manifest_text: str | None = None) -> Path:
    shutil.copy(LOCK, tmp_path / LOCK.name)
    (tmp_path / MANIFEST.name).write_text(manifest_text or MANIFEST.read_text())
    return tmp_path


def check_lock(env_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUILD_ENV), "--check-lock", "--env", str(env_dir)],
                          capture_output=True, text=True, timeout=1800)


@NEEDS_SPACK
def test_build_env_refuses_stale_lock_and_keeps_it(tmp_path: Path) -> None:
    changed = MANIFEST.read_text().replace("miniconda3@24.7.1", "miniconda3@24.5.0")
    assert changed != MANIFEST.read_text()
    env_dir = env_copy(tmp_path, changed)
    result = check_lock(env_dir)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "stale" in result.stderr
    assert (env_dir / LOCK.name).read_bytes() == LOCK.read_bytes()


@NEEDS_SPACK
def test_build_env_accepts_the_committed_lock_and_leaves_it_byte_for_byte(tmp_path: Path) -> None:
    env_dir = env_copy(tmp_path)
    result = check_lock(env_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "build-env: spack.lock is current"
    assert (env_dir / LOCK.name).read_bytes() == LOCK.read_bytes()


@NEEDS_SPACK
def test_a_fresh_solve_of_spack_yaml_gives_the_committed_lock(tmp_path: Path) -> None:
    """A real re-solve (not a read of the lock): same roots, same hashes, on any host CPU."""
    env_dir = env_copy(tmp_path)
    result = subprocess.run(["spack", "-e", str(env_dir), "concretize", "--force"], capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
    fresh = json.loads((env_dir / LOCK.name).read_text())
    assert spack_lock.differences(lock(), fresh) == []
