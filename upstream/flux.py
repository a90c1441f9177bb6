"""Flux (flux-core + flux-sched, the versions spack.yaml pins) built from source into the stack prefix.

The bindings are built for the Python that runs the set-up (the project's .venv), since they
must import in the Python that runs Parsl; flux's own Python commands use a small venv beside them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from . import layout, sources
from .pins import Source, flux_sources
from .steps import Step, run

BUILD_PACKAGES = ("cffi", "ply", "pyyaml", "setuptools", "jsonschema")  # what the two configures check for


def _pins(srcs: list[Source]) -> dict:
    return {**{s.name: s.version for s in srcs}, "python": layout.python_tag()}


def installed(root: Path | None = None) -> Path | None:
    """The installed Flux folder for the current pins, or None."""
    root = root or layout.prefix()
    srcs = flux_sources()
    folder = layout.flux_dir(root, srcs[0].version, srcs[1].version)
    return folder if layout.complete(folder, _pins(srcs)) else None


def _steps(srcs: list[Source], folder: Path, work: Path, mirror: Path | None, downloads: Path) -> list[Step]:
    core, sched = srcs
    venv = folder / "python"
    py = str(venv / "bin" / "python")
    jobs = str(os.cpu_count() or 2)
    trees: dict[str, Path] = {}
    env = {"PYTHON": py, "PKG_CONFIG_PATH": f"{folder}/lib/pkgconfig",
           "FLUX_VERSION": core.version, "FLUX_SCHED_VERSION": sched.version}
    core_tree, sched_tree = work / core.archive.removesuffix(".tar.gz"), work / sched.archive.removesuffix(".tar.gz")
    base = getattr(sys, "_base_executable", sys.executable)

    def unpack() -> None:
        for s in srcs:
            trees[s.name] = sources.tree(s, work, mirror=mirror, downloads=downloads)

    return [
        Step("get sources", action=unpack),
        Step("python for the build", command=[base, "-m", "venv", "--clear", str(venv)]),
        Step("build packages", command=[py, "-m", "pip", "install", "-q", *BUILD_PACKAGES]),
        # a git archive (the mirror's) has no generated configure; a release tarball has one
        Step("flux-core autogen", command=["sh", "-c", "test -x configure || ./autogen.sh"], cwd=core_tree, env=env),
        Step("flux-core configure", command=["./configure", f"--prefix={folder}", "--disable-docs"],
             cwd=core_tree, env=env, expected_lines=330),
        Step("flux-core make", command=["make", f"-j{jobs}"], cwd=core_tree, env=env, expected_lines=780),
        Step("flux-core install", command=["make", "install"], cwd=core_tree, env=env, expected_lines=860),
        Step("flux-sched configure", command=["cmake", "-S", ".", "-B", "build", f"-DCMAKE_INSTALL_PREFIX={folder}",
                                              "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], cwd=sched_tree, env=env),
        Step("flux-sched build", command=["cmake", "--build", "build", "-j", jobs], cwd=sched_tree, env=env),
        Step("flux-sched install", command=["cmake", "--install", "build"], cwd=sched_tree, env=env),
        Step("check: a one-broker instance loads fluxion",
             command=[str(folder / "bin" / "flux"), "start", "--test-size=1", "sh", "-c",
                      "flux module list | grep -q sched-fluxion-qmanager && flux python -c 'import flux'"]),
    ]


def install(root: Path | None = None, *, mirror: Path | None = None, logs: Path | None = None) -> Path:
    """Build Flux into the stack prefix unless the pinned build is already there; returns its folder."""
    root = root or layout.prefix()
    srcs = flux_sources()
    folder = layout.flux_dir(root, srcs[0].version, srcs[1].version)
    with layout.locked(root, "flux"):
        if layout.complete(folder, _pins(srcs)):
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        work = root / "build" / folder.name
        shutil.rmtree(work, ignore_errors=True)
        run(_steps(srcs, folder, work, mirror, root / "downloads"), logs or folder / "build-logs",
            title=f"flux {srcs[0].version}/{srcs[1].version}")
        layout.mark_complete(folder, _pins(srcs))
        shutil.rmtree(work, ignore_errors=True)
    return folder
