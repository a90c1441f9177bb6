"""The cluster path's login-node tools as an ordinary user: no root, no .venv, nothing on PATH but /usr/bin:/bin
(and the set-up's Spack, installed by root under /opt/parsl-mpi-stack, through `parsl-mpi-upstream env`).

scripts/console-script makes the tools' own small venv of /usr/bin/python3 once; the project's Spack gives
this user caches, configuration and an install tree of their own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from upstream import layout
from upstream import spack as setup

from .bundle.conftest import build_tree, key
from .needs import require
from .users import User, account, clone

MADE_ONCE = re.compile(r"^console-script: \S+ is not in \.venv or on PATH: making, once, a venv of /usr/bin/python3 "
                       r"holding env/tools-requirements\.txt in \S+/parsl-mpi-stack/tools-venv/py3\.\d+-[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def ordinary_user() -> Iterator[User]:
    with account() as user:
        yield user


@pytest.fixture(scope="module")
def user_checkout(ordinary_user: User) -> Path:
    return clone(ordinary_user)


def upstream_env() -> str:
    """The lines `parsl-mpi-upstream env` prints here (root's set-up), for the user's shell to eval."""
    require(None if setup.installed(layout.prefix()) else "the set-up's Spack is not installed (scripts/setup.sh)")
    lines = subprocess.run([str(Path(sys.executable).parent / "parsl-mpi-upstream"), "env"], check=True,
                           capture_output=True, text=True).stdout
    assert "spack-" in lines, lines
    return lines


def test_console_script_makes_its_venv_once_and_says_so_in_one_line(ordinary_user: User, user_checkout: Path):
    cache = {"XDG_CACHE_HOME": str(ordinary_user.home / "cache-once")}
    first = ordinary_user.run("scripts/console-script parsl-mpi-environment --no-spack --venv /v", cwd=user_checkout,
                              env=cache)
    assert first.returncode == 0 and first.stdout == ". /v/bin/activate\n", first.stderr
    assert MADE_ONCE.match(first.stderr.rstrip("\n")) and first.stderr.count("\n") == 1, first.stderr
    again = ordinary_user.run("scripts/console-script parsl-mpi-environment --no-spack", cwd=user_checkout, env=cache)
    assert (again.returncode, again.stdout, again.stderr) == (0, "\n", "")
    unknown = ordinary_user.run("scripts/console-script parsl-mpi-nothing", cwd=user_checkout, env=cache)
    assert unknown.returncode == 2 and unknown.stderr.startswith("console-script: parsl-mpi-nothing is not one of")


def test_workflows_environment_prints_the_loads_with_the_system_python3(ordinary_user: User, user_checkout: Path):
    proc = ordinary_user.run("python3 -m workflows.environment", cwd=user_checkout)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, "spack load openmpi\nspack load flux-sched\nspack load miniconda3\n", "")


@pytest.mark.spack
def test_build_env_check_lock_passes_against_the_set_ups_spack(ordinary_user: User, user_checkout: Path):
    script = f'eval "$(cat <<"EOF"\n{upstream_env()}EOF\n)" && command -v spack && scripts/build-env.sh --check-lock'
    first = ordinary_user.run(script, cwd=user_checkout, timeout=1200)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    assert first.stdout.startswith(str(layout.prefix())), first.stdout  # the set-up's spack, root's
    assert "build-env: spack.lock is current (re-solved in" in first.stdout, first.stdout
    again = ordinary_user.run(script, cwd=user_checkout, timeout=600)
    assert again.returncode == 0 and "same inputs as a solve checked before" in again.stdout, again.stderr
    mine = ordinary_user.home / ".local/share/parsl-mpi-stack/shared-spack" / str(setup.installed()).lstrip("/")
    link = mine / "cache" / setup.spack_packages_destination().removeprefix(setup.USER_CACHE)
    assert link.resolve() == layout.packages_dir(layout.prefix(), setup.spack_sources_for_install()[1].commit or "")
    assert "root: '" + str(mine / "opt" / "spack") in (mine / "config" / "config.yaml").read_text()


def test_pack_and_redeploy_a_small_tree_relocated(ordinary_user: User, user_checkout: Path):
    root = build_tree(ordinary_user.home / "tree" / "spack-root")
    ordinary_user.give(ordinary_user.home / "tree")
    packed = ordinary_user.run("scripts/pack.sh ~/tree/spack-root -o ~/bundles/ --json --quiet", cwd=user_checkout)
    assert packed.returncode == 0, packed.stderr
    bundle = json.loads(packed.stdout)["bundle"]
    assert json.loads(packed.stdout)["store_paths"] == 4
    deployed = ordinary_user.run(f"scripts/redeploy.sh {bundle} --prefix ~/moved --relocate --json --quiet",
                                 cwd=user_checkout)
    assert deployed.returncode == 0, deployed.stderr
    assert len(json.loads(deployed.stdout)["written_paths"]) == 4
    hello = ordinary_user.run(f"~/moved/{key('hello')}/bin/hello && ~/moved/{key('hello')}/bin/hello datadir")
    greeting, datadir = hello.stdout.splitlines()  # the compiled-in path, padded with '/' to its old length
    assert greeting == "hello from libgreet"
    assert re.sub("^/+", "/", datadir) == f"{ordinary_user.home}/moved/{key('hello')}/share/doc"
    assert root.is_dir()  # the packed tree is left as it was
