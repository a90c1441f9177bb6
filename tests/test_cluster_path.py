"""The README's "On a cluster" path, every line, as an ordinary user with nothing of .venv (issue 26, item 3).

A new user (tests/users.py: not root, `env -i`, PATH=/usr/bin:/bin, so python3 is the system's) on the
local Slurm cluster, in a fresh clone in their home, which the nodes see (each node has a private /tmp):

1. the project's Spack, installed by the user (a user-owned copy of the set-up's, as `python3 -m upstream
   install spack` makes one without root), fake-installs the lock (`spack -e . install --fake
   --only-concrete`): the stand-in for hours of compiling;
2. stand-ins for the compiled packages go into the fake prefixes (tests/standins.py: conda's Python is a venv
   of the system python3, flux-core runs the set-up's Flux build, openmpi Debian's Open MPI);
3. `scripts/build-env.sh` as written: the lock check, `spack -e . install` (a no-op over the fake install),
   env/parsl-requirements.txt into the conda stand-in with pip;
4. `spack env activate .`, `eval "$(python3 -m workflows.environment)"`, then `python workflows/run.py
   VARIANT` for every variant: exit 0 and result.json "verified", with conda's python first on PATH;
5. `scripts/pack.sh $SPACK_ROOT -o DIR --with-spack`, `scripts/redeploy.sh BUNDLE --prefix OTHER
   --relocate` (a shorter prefix), the built tree removed, `. OTHER/.bundle/env.sh` and `spack env
   activate .`, the loads, every variant again.

What stands in, and why, is listed in docs/cluster-path.md. Two runs per variant, one round each side of
the redeploy: the point is the path; the variants' own tests (tests/workflows) measure the rest.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster.spec import ClusterSpec, client_env
from upstream import flux as setup_flux
from upstream import layout
from upstream import spack as setup_spack

from . import standins
from .conftest import Cluster
from .needs import require
from .users import User, account, clone

pytestmark = [pytest.mark.cluster, pytest.mark.spack, pytest.mark.flux]

VARIANTS = (("htex",), ("static",), ("mpi",), ("mpi", "--launcher", "flux"), ("flux",))
REPEATS = 2
CLIENT_VARS = ("SLURM_CONF", "PMIX_MCA_gds", "LOCAL_CLUSTER_ADDRESS", "LOCAL_CLUSTER_SHARED")  # not root's
PACKAGE_REPOS = "package_repos"  # the pinned spack-packages, in a Spack's user cache (spack.yaml: repos)


@dataclass(frozen=True)
class Place:
    """The user and where their things are."""
    user: User
    spack: Path  # the user's install of the project's Spack (bin/spack, setup-env.sh, spack/ = SPACK_ROOT)
    clone: Path  # the fresh clone of the checkout
    client: dict[str, str]  # the cluster's client variables

    def bash(self, script: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """SCRIPT as the user in the clone, `set -euo pipefail`."""
        return self.user.run(f"set -euo pipefail\n{script}", cwd=self.clone, env=self.client, timeout=timeout)

    @property
    def spack_line(self) -> str:
        return f". {shlex.quote(str(self.spack / 'setup-env.sh'))}"


def _check(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        pytest.fail(f"{what}: exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n"
                    f"{proc.stderr[-4000:]}")
    return proc.stdout


def _setup(folder: Path | None, what: str) -> Path:
    """A folder of the set-up (scripts/setup.sh made it); in CI its absence fails the test."""
    require(None if folder else f"the set-up's {what} is not installed (scripts/setup.sh)")
    assert folder is not None
    return folder


def user_spack(dest: Path, setup: Path) -> Path:
    """The project's Spack as a user installs it without root (`python3 -m upstream install spack` puts it in
    ~/.local/share/parsl-mpi-stack): the set-up's copied, setup-env.sh naming DEST, its cache holding the pinned
    spack-packages (a link to the set-up's, offline) and a warm index of them. For its owner, its store is
    its own spack/opt/spack, which `pack.sh $SPACK_ROOT --with-spack` packs with Spack itself."""
    shutil.copytree(setup / "spack", dest / "spack", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(setup / "python", dest / "python", symlinks=True)
    shutil.copytree(setup / "bin", dest / "bin")  # the wrapper finds its folder from its own path
    (dest / "setup-env.sh").write_text((setup / "setup-env.sh").read_text().replace(str(setup), str(dest)))
    (dest / "config").mkdir()
    link_repos(dest / "cache", setup / "cache")
    if (setup / "cache" / "cache").is_dir():  # Spack's index of the package repository: minutes to rebuild
        shutil.copytree(setup / "cache" / "cache", dest / "cache" / "cache", symlinks=True)
    return dest


def link_repos(cache: Path, setup_cache: Path) -> None:
    """CACHE/package_repos/<repo>: links to the set-up's pinned spack-packages, where a Spack with network
    access would clone it on first use (this machine reaches no upstream)."""
    (cache / PACKAGE_REPOS).mkdir(parents=True, exist_ok=True)
    for repo in (setup_cache / PACKAGE_REPOS).iterdir():
        if not (cache / PACKAGE_REPOS / repo.name).exists():
            (cache / PACKAGE_REPOS / repo.name).symlink_to(repo.resolve())


def user_ssh(user: User, spec: ClusterSpec) -> None:
    """The user's own key to the nodes (~/.ssh, as on a cluster whose homes are shared): FluxExecutor reaches
    its Flux instance with ssh://. The cluster's ssh_config and known hosts, for this user and key."""
    # useradd leaves the password locked ("!"), and sshd without PAM refuses a locked account even with a key
    subprocess.run(["usermod", "-p", "*", user.name], check=True)
    ssh = user.home / ".ssh"
    ssh.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "id_ed25519")], check=True)
    shutil.copy(ssh / "id_ed25519.pub", ssh / "authorized_keys")
    shutil.copy(spec.ssh_dir / "known_hosts", ssh / "known_hosts")
    config = re.sub(r"(?m)^  User root$", f"  User {user.name}", spec.ssh_config.read_text())
    config = re.sub(r"(?m)^  IdentityFile .*$", f"  IdentityFile {ssh / 'id_ed25519'}", config)
    config = re.sub(r"(?m)^  UserKnownHostsFile .*$", f"  UserKnownHostsFile {ssh / 'known_hosts'}", config)
    (ssh / "config").write_text(config)
    user.give(ssh)


@pytest.fixture(scope="module")
def place(slurm_cluster: Cluster) -> Iterator[Place]:
    """A new user, the project's Spack in their home, a fresh clone, ssh to the nodes; removed afterwards."""
    with account() as user:
        spack = user_spack(user.home / "spack-1.0.2", _setup(setup_spack.installed(layout.prefix()), "Spack"))
        user.give(spack)
        user_ssh(user, slurm_cluster.spec)
        client = {k: v for k, v in client_env(slurm_cluster.spec).items() if k in CLIENT_VARS}
        place = Place(user, spack, clone(user), client)
        _check(place.bash("test -r \"$SLURM_CONF\" && sinfo -h -o %D"), "the user reaching the cluster")
        yield place


@pytest.fixture(scope="module")
def installed(place: Place) -> Place:
    """The lock fake-installed by the user's Spack, the stand-ins put into its prefixes."""
    _check(place.bash(f"{place.spack_line}\nspack -e . install --fake --only-concrete"), "spack install --fake")
    out = _check(place.bash(f"{place.spack_line}\n" + "\n".join(
        f"spack -e . location -i {name}" for name in standins.PACKAGES)), "spack location -i")
    prefixes = dict(zip(standins.PACKAGES, (Path(line) for line in out.split()), strict=True))
    standins.install(prefixes, _setup(setup_flux.installed(layout.prefix()), "Flux build"))
    place.user.give(place.spack / "spack" / "opt")
    return place


@pytest.fixture(scope="module")
def built(installed: Place) -> subprocess.CompletedProcess[str]:
    """scripts/build-env.sh, the README's first line, by the user."""
    return installed.bash(f"{installed.spack_line}\nscripts/build-env.sh")


SHELL = """
eval "$(python3 -m workflows.environment)"
echo "shell python=$(command -v python)"
echo "shell PATH=$PATH"
echo "shell PYTHONPATH=${PYTHONPATH:-}"
mkdir -p logs
"""


def _name(args: tuple[str, ...]) -> str:
    return "-".join(a for a in args if a != "--launcher")


def run_all(p: Place, activate: str, tag: str) -> dict[str, dict]:
    """Every variant, in one shell after ACTIVATE and the loads: {"shell": its PATH..., "variants": {name: ...}}."""
    lines = [activate, SHELL]
    for args in VARIANTS:
        log = f"logs/{tag}-{_name(args)}"
        lines.append(f"if python workflows/run.py {' '.join(args)} --repeats {REPEATS} --json >{log}.out 2>{log}.err"
                     f"; then rc=0; else rc=$?; fi\necho \"variant {_name(args)} $rc $(tail -n 1 {log}.out)\"")
    out = _check(p.bash("\n".join(lines), timeout=1500), f"the variants ({tag})")
    shell = dict(line.removeprefix("shell ").split("=", 1) for line in out.splitlines() if line.startswith("shell "))
    ran = {w[1]: {"rc": int(w[2]), "result": w[3] if len(w) > 3 else None}
           for w in (line.split() for line in out.splitlines() if line.startswith("variant "))}
    return {"shell": shell, "variants": ran}


def assert_verified(p: Place, outcome: dict, conda_bin: Path, tag: str) -> None:
    """Every variant exited 0 with a verified result.json in the clone's runs/; conda's python first on PATH,
    nothing of a .venv on PATH or PYTHONPATH."""
    shell = outcome["shell"]
    assert shell["python"] == str(conda_bin / "python"), shell
    assert ".venv" not in shell["PATH"] and ".venv" not in shell["PYTHONPATH"], shell
    failed = {}
    for args in VARIANTS:
        got = outcome["variants"].get(_name(args))
        result = Path(got["result"]) if got and got["result"] else None
        data = json.loads(result.read_text()) if result and result.is_file() else {}
        if got and got["rc"] == 0 and data.get("verified") is True and result and result.is_relative_to(p.clone):
            continue
        err = p.clone / "logs" / f"{tag}-{_name(args)}.err"
        failed[_name(args)] = (got, err.read_text()[-3000:] if err.exists() else "", data.get("problems"))
    assert not failed, "\n".join(f"{n}: {g}\n{e}\nproblems: {pr}" for n, (g, e, pr) in failed.items())


def conda_bin(p: Place, activate: str) -> Path:
    out = _check(p.bash(f"{activate}\nspack location -i miniconda3"), "spack location -i miniconda3")
    return Path(out.split()[-1]) / "bin"


def test_build_env_checks_the_lock_installs_and_puts_parsl_into_conda(built: subprocess.CompletedProcess[str],
                                                                       installed: Place) -> None:
    out = _check(built, "scripts/build-env.sh")
    assert out.rstrip().endswith("spack load openmpi\nspack load flux-sched\nspack load miniconda3"), out
    conda = conda_bin(installed, f"{installed.spack_line}\nspack env activate .")
    check = installed.bash(f"env -u PYTHONPATH {conda}/python -c 'import parsl, matplotlib; print(parsl.__file__)'")
    assert _check(check, "Parsl in conda's Python").startswith(str(conda.parent)), check.stdout
    firsts = {f.name: f.open("rb").readline().rstrip() for f in conda.iterdir() if f.is_file()}
    long = [name for name, line in firsts.items() if line.startswith(b"#!") and len(line) > 127]
    assert not long, f"shebangs over the kernel's 127 bytes in conda's bin: {long}"


def test_every_variant_verifies_as_the_user(built: subprocess.CompletedProcess[str], installed: Place) -> None:
    _check(built, "scripts/build-env.sh")
    activate = f"{installed.spack_line}\nspack env activate ."
    assert_verified(installed, run_all(installed, activate, "built"), conda_bin(installed, activate), "built")


def test_every_variant_verifies_after_pack_and_a_relocating_redeploy(built: subprocess.CompletedProcess[str],
                                                                    installed: Place) -> None:
    _check(built, "scripts/build-env.sh")
    p, root = installed, installed.spack / "spack"
    other = p.user.home / "o"  # shorter than the root it was built in: the padded paths are rewritten to fit
    bundles = p.user.home / "bundles"
    _check(p.bash(f"{p.spack_line}\nscripts/pack.sh \"$SPACK_ROOT\" -o {bundles}/ --with-spack"), "scripts/pack.sh")
    bundle = next(bundles.glob("bundle-*.tar.zst"))
    _check(p.bash(f"scripts/redeploy.sh {bundle} --prefix {other} --relocate"), "scripts/redeploy.sh")
    shutil.rmtree(root / "opt")  # nothing of the built tree left to use by mistake
    # The redeployed Spack runs with Spack's own defaults (no setup-env.sh of the project's): its user cache is
    # ~/.spack, where it would clone the pinned spack-packages on first use.
    link_repos(p.user.home / ".spack", p.spack / "cache")
    p.user.give(p.user.home / ".spack")
    # env.sh gives the redeployed Spack; the environment gives its install tree (padded_length is spack.yaml's,
    # so Spack outside it looks for its database in the unpadded opt/spack, and finds nothing)
    activate = f". {other}/.bundle/env.sh\nspack env activate ."
    conda = conda_bin(p, activate)
    assert conda.is_relative_to(other), conda
    assert_verified(p, run_all(p, activate, "redeployed"), conda, "redeployed")
