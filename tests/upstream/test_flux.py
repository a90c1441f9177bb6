"""The Flux set-up's pieces: pins read from spack.yaml, sources from a mirror, steps, the build folder's marker.

The build itself runs in scripts/setup.sh (CI builds it from the mirror); the last test checks that
a set-up of what is built is a no-op that says where it is.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from upstream import flux, layout, pins, sources, steps

from ..needs import require

PROJECT = Path(__file__).resolve().parents[2]


def test_flux_versions_are_the_ones_spack_yaml_pins() -> None:
    specs = yaml.safe_load((PROJECT / "spack.yaml").read_text())["spack"]["specs"]
    core, sched = pins.flux_sources()
    assert f"flux-core@{core.version}" in specs and f"flux-sched@{sched.version}" in specs
    assert core.archive == f"flux-core-{core.version}.tar.gz"
    assert core.url.endswith(f"/v{core.version}/flux-core-{core.version}.tar.gz") and len(core.sha256 or "") == 64


def test_a_version_spack_yaml_does_not_pin_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "spack.yaml").write_text("spack:\n  specs:\n  - flux-core\n")
    with pytest.raises(pins.PinError, match="pins no exact version of flux-core"):
        pins.pinned_version("flux-core", tmp_path)


def archive(path: Path, top: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_mirror_archive_is_unpacked_to_name_version(tmp_path: Path) -> None:
    src = pins.Source("flux-core", "0.73.0", "https://example.invalid/x.tar.gz")
    archive(tmp_path / "flux-core-0.73.0.tar.gz", "flux-core-0.73.0", {"configure.ac": b"x"})
    tree = sources.tree(src, tmp_path / "work", mirror=tmp_path, downloads=tmp_path / "dl")
    assert tree == tmp_path / "work" / "flux-core-0.73.0" and (tree / "configure.ac").read_bytes() == b"x"


def test_a_mirror_archive_with_members_outside_its_folder_is_refused(tmp_path: Path) -> None:
    src = pins.Source("flux-core", "0.73.0", "https://example.invalid/x.tar.gz")
    archive(tmp_path / "flux-core-0.73.0.tar.gz", "other", {"a": b"x"})
    with pytest.raises(sources.SourceError, match="expected every member under flux-core-0.73.0/"):
        sources.tree(src, tmp_path / "work", mirror=tmp_path, downloads=tmp_path / "dl")


def test_a_mirror_that_lacks_an_archive_says_which(tmp_path: Path) -> None:
    srcs = pins.flux_sources()
    (tmp_path / srcs[0].archive).write_bytes(b"")
    assert sources.reachable(srcs, tmp_path) == f"{tmp_path} lacks {srcs[1].archive}"
    with pytest.raises(sources.SourceError, match="not found in the source mirror"):
        sources.tree(srcs[1], tmp_path / "w", mirror=tmp_path, downloads=tmp_path / "d")


def test_a_failed_step_is_one_line_naming_it_and_its_log(tmp_path: Path) -> None:
    with pytest.raises(steps.StepFailed) as err:
        steps.run([steps.Step("fine", command=["true"]),
                   steps.Step("make it", command=["sh", "-c", "echo compiling; exit 3"])], tmp_path, title="demo")
    message = str(err.value)
    log = tmp_path / "02-make-it.log"
    assert message == f"demo: step 'make it' failed (exit 3); see {log}"
    assert "compiling" in log.read_text()


def test_a_build_folder_counts_only_with_its_marker_for_the_same_pins(tmp_path: Path) -> None:
    assert not layout.complete(tmp_path, {"flux-core": "0.73.0"})
    layout.mark_complete(tmp_path, {"flux-core": "0.73.0"})
    assert layout.complete(tmp_path, {"flux-core": "0.73.0"})
    assert not layout.complete(tmp_path, {"flux-core": "0.74.0"})


def test_without_sources_install_says_how_to_provide_them_and_fails_only_when_required(tmp_path: Path) -> None:
    env = {**os.environ, "PARSL_MPI_STACK_PREFIX": str(tmp_path / "prefix"),
           "PARSL_MPI_STACK_SOURCES": str(tmp_path / "empty-mirror")}
    (tmp_path / "empty-mirror").mkdir()
    for extra, code in (([], 0), (["--require"], 1)):
        proc = subprocess.run([sys.executable, "-m", "upstream", "install", "flux", *extra], env=env,
                              capture_output=True, text=True, cwd=PROJECT)
        assert proc.returncode == code, proc.stderr
        assert proc.stderr.strip() == (f"upstream: flux not built: {tmp_path / 'empty-mirror'} lacks "
                                       "flux-core-0.73.0.tar.gz, flux-sched-0.44.0.tar.gz")
    assert not (tmp_path / "prefix" / "build").exists()


def test_the_set_up_s_flux_is_found_again_without_building() -> None:
    folder = flux.installed()
    if folder is None:
        require("Flux is not built here (scripts/setup.sh builds it)")
    proc = subprocess.run([sys.executable, "-m", "upstream", "install", "flux"], capture_output=True, text=True,
                          cwd=PROJECT, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == f"upstream: flux is installed at {folder}"
    env = subprocess.run([sys.executable, "-m", "upstream", "env"], capture_output=True, text=True, cwd=PROJECT)
    assert f"{folder}/bin" in env.stdout
