"""The Spack environment: spack.yaml pins, spack.lock consistency, Parsl pins, build-env.sh.

The tests that need Spack (test_spack_real.py) run with `spack` on PATH or the set-up's (tests/spack/spackbin.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

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


def test_package_repository_is_pinned_to_one_commit_and_its_own_folder() -> None:
    builtin = manifest()["repos"]["builtin"]
    assert builtin["git"] == "https://github.com/spack/spack-packages.git"
    assert re.fullmatch(r"[0-9a-f]{40}", builtin["commit"])
    # Spack uses a fetched folder whatever its commit: the folder must be the commit's own.
    assert builtin["destination"] == f"$user_cache_path/package_repos/spack-packages-{builtin['commit'][:7]}"


def test_install_prefixes_are_padded_for_relocation() -> None:
    assert manifest()["config"]["install_tree"]["padded_length"] == 128
    comment = MANIFEST.read_text().split("padded_length:")[0][-900:]  # the comment above it says why
    assert "relocat" in comment and "128" in comment


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


