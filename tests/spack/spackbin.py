"""The Spack the tests use: `spack` on PATH, else the set-up's (installed on first use when its sources can
be reached). With CI=true a missing Spack fails the test: a CI that could not set Spack up must not pass.

Also for other test folders (tests/bundle): `from tests.spack.spackbin import spack_or_skip, fake_installed_env`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "spack.yaml"
LOCK = REPO / "spack.lock"


@dataclass(frozen=True)
class Spack:
    command: str  # the spack executable
    env: dict[str, str]  # os.environ with that spack's folder first on PATH


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and no Spack: {reason}")
    pytest.skip(reason)


def find() -> tuple[str | None, str]:
    """(spack command, '') or (None, why not). Installs the set-up's Spack when its sources can be reached."""
    on_path = shutil.which("spack")
    if on_path:
        return on_path, ""
    from upstream import layout, sources
    from upstream import spack as setup

    root = layout.prefix()
    folder = setup.installed(root)
    if folder is None:
        mirror = sources.mirror_from_env()
        missing = sources.reachable(setup.spack_sources_for_install(), mirror)
        if missing:
            return None, f"spack not on PATH and the set-up's Spack is not installed: {missing}"
        try:
            folder = setup.install(root, mirror=mirror)
        except Exception as err:  # the set-up's own one-line error
            return None, f"the set-up could not install Spack: {err}"
    return str(folder / "bin" / "spack"), ""


_FOUND: list[tuple[str | None, str]] = []


def spack_or_skip() -> Spack:
    """The Spack to test with; skips (fails under CI=true) with a one-line reason when there is none."""
    if not _FOUND:
        _FOUND.append(find())
    command, why = _FOUND[0]
    if command is None:
        _unavailable(why)
    bin_dir = str(Path(command).parent)
    return Spack(command, {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})


def env_copy(dest: Path, manifest_text: str | None = None, *, store: Path | None = None) -> Path:
    """spack.yaml (or an edited text of it) and spack.lock copied to dest; store: an install_tree root."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(LOCK, dest / LOCK.name)
    text = manifest_text or MANIFEST.read_text()
    if store is not None:
        data = yaml.safe_load(text)
        data["spack"].setdefault("config", {}).setdefault("install_tree", {})["root"] = str(store)
        text = yaml.safe_dump(data, sort_keys=False)
    (dest / MANIFEST.name).write_text(text)
    return dest


def run(spack: Spack, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([spack.command, *args], capture_output=True, text=True, timeout=timeout,
                          env=spack.env, stdin=subprocess.DEVNULL)


def fake_installed_env(spack: Spack, dest: Path) -> tuple[Path, Path]:
    """The locked environment fake-installed (`install --fake --only-concrete`, ~20 s) into dest/store.

    Returns (environment folder, store). Spack's install database is dest/store/.spack-db.
    """
    store = dest / "store"
    env_dir = env_copy(dest / "env", store=store)
    result = run(spack, "-e", str(env_dir), "install", "--fake", "--only-concrete")
    assert result.returncode == 0, result.stderr[-2000:]
    return env_dir, store
