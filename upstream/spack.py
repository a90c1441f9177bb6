"""Spack (the release spack.lock was written with) and spack-packages (the commit spack.yaml pins), set up
in the stack prefix to run offline, with every piece of its configuration and caches in folders it owns.

    <prefix>/spack-<version>/            the install folder (installed() returns it)
        bin/spack                        the wrapper: sets the variables of env() and runs spack/bin/spack
        setup-env.sh                     the same settings, then Spack's shell support (spack load, env activate)
        spack/                           Spack itself (its etc/spack holds the site configuration below)
        python/                          a venv with clingo from PyPI: SPACK_PYTHON, so nothing is bootstrapped
        cache/                           SPACK_USER_CACHE_PATH: misc and source caches, stages, package_repos/
        config/                          SPACK_USER_CONFIG_PATH (unread: SPACK_DISABLE_LOCAL_CONFIG=1)
    <prefix>/spack-packages-<commit7>/   the package repository, a git work tree at the pinned commit

spack.yaml names the repository's folder as `$user_cache_path/package_repos/spack-packages-<commit7>`
(Spack clones into it only when it has no .git, so a user's own Spack gets its own clone at that commit);
here that folder is a relative symlink to the repository beside the install folder.
Sources are checked: a mirror archive must be the `git archive` of the pinned commit (its pax header names
the commit), a clone must be at it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from . import layout, sources
from .pins import PinError, Source, _spack_yaml, checkout, spack_sources
from .steps import Step, run

# clingo from PyPI is Spack's solver here; an exact pin, so two set-ups solve with the same clingo.
PYTHON_PACKAGES = ("clingo==5.8.3",)
# Raised when what the set-up writes (wrapper, site configuration) changes: older installs are redone.
SETUP_VERSION = 2
USER_CACHE = "$user_cache_path/"


def spack_sources_for_install(project: Path | None = None) -> list[Source]:
    """What install() needs: Spack at its tag's commit, spack-packages at spack.yaml's commit."""
    return spack_sources(project)


def spack_packages_destination(project: Path | None = None) -> str:
    """Where spack.yaml has Spack find (or clone) the pinned spack-packages (repos: builtin: destination:)."""
    builtin = (_spack_yaml(project).get("repos") or {}).get("builtin")
    destination = builtin.get("destination") if isinstance(builtin, dict) else None
    if not destination or not str(destination).startswith(USER_CACHE):
        raise PinError(f"spack.yaml's repos: builtin: destination: must name a folder under {USER_CACHE} "
                       f"(it is {destination!r})")
    return str(destination)


def _pins(srcs: list[Source]) -> dict:
    spack, packages = srcs
    return {"spack": spack.version, "spack-commit": spack.commit, "spack-packages": packages.commit,
            "python-packages": list(PYTHON_PACKAGES), "python": layout.python_tag(), "setup": SETUP_VERSION}


def _packages_pins(packages: Source) -> dict:
    return {"commit": packages.commit, "setup": SETUP_VERSION}


def _folders(root: Path, srcs: list[Source]) -> tuple[Path, Path]:
    return layout.spack_dir(root, srcs[0].version), layout.packages_dir(root, srcs[1].commit or "")


def installed(root: Path | None = None) -> Path | None:
    """The install folder (its bin/ holds the `spack` wrapper) for the current pins, or None."""
    root = root or layout.prefix()
    srcs = spack_sources_for_install()
    folder, packages = _folders(root, srcs)
    complete = layout.complete(folder, _pins(srcs)) and layout.complete(packages, _packages_pins(srcs[1]))
    return folder if complete else None


def env(folder: Path) -> dict[str, str]:
    """The variables the wrapper sets for a user who can write the install folder (its owner): for running
    the install's spack/bin/spack (or a copy of it) directly."""
    return {"SPACK_PYTHON": str(folder / "python" / "bin" / "python"),
            "SPACK_USER_CONFIG_PATH": str(folder / "config"),
            "SPACK_USER_CACHE_PATH": str(folder / "cache"),
            "SPACK_DISABLE_LOCAL_CONFIG": "1"}


def settings_function(link: str, packages: str) -> str:
    """The shell function bin/spack and setup-env.sh both run, given the install folder.

    Its owner gets env(). Anyone else (a Spack installed by root for everyone) gets a folder of their own,
    $XDG_DATA_HOME (else ~/.local/share)/parsl-mpi-stack/shared-spack/<install folder>: the caches there
    (with the package-repository link spack.yaml names, `link` under them, pointing at `packages`, relative
    to the install folder), a user scope there whose config.yaml puts installs there too (the site's
    install tree is not theirs to write), an empty system scope in place of /etc/spack, and git told to
    trust the package repository (it is owned by someone else, and git refuses such work trees).
    """
    return f"""parsl_mpi_stack_spack() {{  # $1: the install folder
  local here="$1" mine repo n
  export SPACK_PYTHON="$here/python/bin/python"
  if [ -w "$here/cache" ]; then
    export SPACK_USER_CONFIG_PATH="$here/config" SPACK_USER_CACHE_PATH="$here/cache" SPACK_DISABLE_LOCAL_CONFIG=1
    return 0
  fi
  mine="${{XDG_DATA_HOME:-$HOME/.local/share}}/parsl-mpi-stack/shared-spack$here"
  repo="$(cd "$here/{packages}" && pwd -P)"
  if [ ! -e "$mine/cache/{link}" ]; then
    mkdir -p "$mine/cache/{os.path.dirname(link)}" "$mine/config" "$mine/system"
    ln -sfn "$repo" "$mine/cache/{link}"
  fi
  [ -f "$mine/config/config.yaml" ] ||
    printf 'config:\\n  install_tree:\\n    root: %s\\n' "'$mine/opt/spack'" > "$mine/config/config.yaml"
  unset SPACK_DISABLE_LOCAL_CONFIG
  export SPACK_USER_CONFIG_PATH="$mine/config" SPACK_USER_CACHE_PATH="$mine/cache"
  export SPACK_SYSTEM_CONFIG_PATH="$mine/system"
  n="${{GIT_CONFIG_COUNT:-0}}"
  export "GIT_CONFIG_KEY_$n=safe.directory" "GIT_CONFIG_VALUE_$n=$repo" GIT_CONFIG_COUNT=$((n + 1))
}}
"""


def wrapper_text(link: str, packages: str) -> str:
    """bin/spack: finds its install folder from its own path, so the folder can move as a whole."""
    return f"""#!/bin/sh
# Written by `python3 -m upstream install spack`: the project's Spack, offline, with its configuration and
# caches in this folder for its owner, in a folder of their own for anyone else (never ~/.spack).
set -eu
{settings_function(link, packages)}here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
parsl_mpi_stack_spack "$here"
exec "$here/spack/bin/spack" "$@"
"""


def setup_env_text(folder: Path, link: str, packages: str) -> str:
    """setup-env.sh: Spack's shell support (`spack load`, `spack env activate`) with the wrapper's settings."""
    return ("# . this file (bash, zsh): Spack's own setup-env.sh, with the settings of bin/spack (see there).\n"
            f"{settings_function(link, packages)}parsl_mpi_stack_spack {shlex.quote(str(folder))}\n"
            "unset -f parsl_mpi_stack_spack\n"
            f". {shlex.quote(str(folder / 'spack' / 'share' / 'spack' / 'setup-env.sh'))}\n")


def _write_scripts(folder: Path, packages: Path, destination: str) -> None:
    """bin/spack and setup-env.sh, each replaced whole (a rename) when its text changed.

    They hold no build, so an install made by an older set-up gets the current ones without a rebuild.
    """
    link, relative = destination.removeprefix(USER_CACHE), os.path.relpath(packages, folder)
    wrapper = folder / "bin" / "spack"
    wrapper.parent.mkdir(exist_ok=True)
    for path, text in ((wrapper, wrapper_text(link, relative)),
                       (folder / "setup-env.sh", setup_env_text(folder, link, relative))):
        with contextlib.suppress(OSError):
            if path.read_text() == text:
                continue
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755 if path == wrapper else 0o644)
        tmp.rename(path)


def site_config(packages: Source, destination: str) -> dict[str, str]:
    """The files written to spack/etc/spack (the site scope, read whatever the environment)."""
    return {
        "bootstrap.yaml": "# clingo comes from PyPI (SPACK_PYTHON); nothing is downloaded or built to solve.\n"
                          "bootstrap:\n  enable: false\n",
        "config.yaml": "# Caches and stages under SPACK_USER_CACHE_PATH, which the wrapper points into the set-up.\n"
                       "config:\n"
                       "  misc_cache: $user_cache_path/cache\n"
                       "  source_cache: $user_cache_path/source-cache\n"
                       "  build_stage:\n  - $user_cache_path/stage\n"
                       "  test_stage: $user_cache_path/test\n",
        "repos.yaml": "# The pinned spack-packages, also outside an environment (spack find, spack load).\n"
                      "repos:\n  builtin:\n"
                      f"    git: {packages.url}\n    commit: {packages.commit}\n    destination: {destination}\n",
    }


def check_env_yaml(project: Path) -> str:
    """A one-spec environment with the project's packages (compiler, target): a small real solve, offline.

    In an environment so that Spack finds its compiler there and writes no configuration of its own
    (outside one it would record the compilers it detects in the site scope).
    """
    packages = _spack_yaml(project).get("packages") or {}
    return yaml.safe_dump({"spack": {"specs": ["zlib-ng"], "view": False, "packages": packages}})


# The commit made from a mirror's archive: the same tree gives the same commit id on every machine.
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "parsl-mpi-stack set-up", "GIT_AUTHOR_EMAIL": "set-up@localhost",
                "GIT_AUTHOR_DATE": "1980-01-01T00:00:00+0000", "GIT_COMMITTER_NAME": "parsl-mpi-stack set-up",
                "GIT_COMMITTER_EMAIL": "set-up@localhost", "GIT_COMMITTER_DATE": "1980-01-01T00:00:00+0000"}


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                   env={**os.environ, **GIT_IDENTITY})


def _as_git_work_tree(tree: Path, source: Source) -> None:
    """Spack uses a repository folder as it is once it holds .git; a mirror's archive gets one commit."""
    if (tree / ".git").exists():
        return
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "--no-verify", "--no-gpg-sign", "-m",
         f"{source.name} {source.commit}: git archive of that commit, from the source mirror")
    _git(tree, "remote", "add", "origin", source.url)


def _steps(srcs: list[Source], folder: Path, packages: Path, work: Path, mirror: Path | None,
           downloads: Path, destination: str) -> list[Step]:
    spack_src, packages_src = srcs
    py = folder / "python" / "bin" / "python"
    base = getattr(sys, "_base_executable", sys.executable)
    wrapper = folder / "bin" / "spack"
    check_env = work / "check-env"

    def get_sources() -> None:
        tree = sources.tree(spack_src, work, mirror=mirror, downloads=downloads)
        shutil.rmtree(tree / ".git", ignore_errors=True)  # a release: the lock records `"type": "release"`
        tree.rename(folder / "spack")
        if not layout.complete(packages, _packages_pins(packages_src)):
            shutil.rmtree(packages, ignore_errors=True)
            tree = sources.tree(packages_src, work, mirror=mirror, downloads=downloads)
            _as_git_work_tree(tree, packages_src)
            tree.rename(packages)
            layout.mark_complete(packages, _packages_pins(packages_src))

    def configure() -> None:
        for name, text in site_config(packages_src, destination).items():
            (folder / "spack" / "etc" / "spack" / name).write_text(text)
        for sub in ("config", "cache/package_repos"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        link = folder / "cache" / destination.removeprefix(USER_CACHE)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(packages, link.parent))
        _write_scripts(folder, packages, destination)
        check_env.mkdir(parents=True, exist_ok=True)
        (check_env / "spack.yaml").write_text(check_env_yaml(checkout()))

    return [
        Step("get sources (commits checked)", action=get_sources),
        Step("python for spack", command=[base, "-m", "venv", "--clear", str(folder / "python")]),
        Step("clingo from PyPI", command=[str(py), "-m", "pip", "install", "-q", *PYTHON_PACKAGES]),
        Step("configure: site scope, wrapper, caches", action=configure),
        Step("check: spack runs offline and solves", cwd=folder,
             command=["sh", "-c", f"{wrapper} --version && {wrapper} repo list && "
                      f"{wrapper} python -c 'import clingo' && {wrapper} -e {check_env} concretize"]),
    ]


def install(root: Path | None = None, *, mirror: Path | None = None, logs: Path | None = None) -> Path:
    """Set up the pinned Spack unless it is there already (then this takes well under a second)."""
    root = root or layout.prefix()
    srcs = spack_sources_for_install()
    destination = spack_packages_destination()
    folder, packages = _folders(root, srcs)
    with layout.locked(root, "spack"):
        if installed(root):
            _write_scripts(folder, packages, destination)
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        work = root / "build" / folder.name
        shutil.rmtree(work, ignore_errors=True)
        run(_steps(srcs, folder, packages, work, mirror, root / "downloads", destination),
            logs or folder / "build-logs", title=f"spack {srcs[0].version}")
        layout.mark_complete(folder, _pins(srcs))
        shutil.rmtree(work, ignore_errors=True)
    return folder
