"""The README's "On a cluster" path, every line, as an ordinary user with nothing of .venv (issue 26, item 3).

As a user (tests/userpath.py: not root, `env -i`, PATH=/usr/bin:/bin) on the local Slurm cluster, in a fresh
clone in their home: the project's Spack (a copy of the set-up's, owned by the user, as `python3 -m upstream
install spack` makes one without root), the locked environment fake-installed by it, stand-ins for the
compiled packages (tests/standins.py: conda's Python is a venv of the system python3, flux-core runs the
set-up's Flux build, openmpi Debian's Open MPI), then scripts/build-env.sh as written (lock check, `spack -e .
install`, Parsl into conda's base), `spack env activate .`, `eval "$(python3 -m workflows.environment)"` and
`python workflows/run.py VARIANT` for every variant; then `scripts/pack.sh $SPACK_ROOT --with-spack`,
`scripts/redeploy.sh BUNDLE --prefix OTHER --relocate`, `. OTHER/.bundle/env.sh` and every variant again.

What stands in, and why, is listed in docs/cluster-path.md. Two runs per variant, one round each side of
the redeploy: the point is the path, the variants' own tests (tests/workflows) measure the rest.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster.spec import client_env
from tests import standins, userpath
from tests.conftest import Cluster
from tests.needs import require
from upstream import flux as setup_flux
from upstream import layout
from upstream import spack as setup_spack

pytestmark = [pytest.mark.cluster, pytest.mark.spack, pytest.mark.flux]

PROJECT = Path(__file__).resolve().parent.parent
VARIANTS = (("htex",), ("static",), ("mpi",), ("mpi", "--launcher", "flux"), ("flux",))
REPEATS = 2
PACKAGES_LINK = "package_repos"  # the pinned spack-packages in the user's Spack cache (offline: a link to the set-up's)


@dataclass(frozen=True)
class Place:
    """Where the user's things are."""
    user: userpath.User
    top: Path  # the user's folder for this test, in their home
    spack: Path  # the user's install of the project's Spack (bin/spack, setup-env.sh, spack/ = SPACK_ROOT)
    clone: Path  # the fresh clone of the checkout
    client: dict[str, str]  # the cluster's client variables

    def bash(self, script: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.user.bash(script, cwd=cwd or self.clone, extra=self.client, timeout=timeout)


def _check(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        pytest.fail(f"{what}: exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n"
                    f"{proc.stderr[-4000:]}")
    return proc.stdout


def _setup_spack() -> Path:
    """The set-up's Spack install folder (scripts/setup.sh made it); in CI its absence fails the test."""
    folder = setup_spack.installed(layout.prefix())
    require(None if folder else "the set-up's Spack is not installed (scripts/setup.sh)")
    assert folder is not None
    return folder


def _setup_flux() -> Path:
    folder = setup_flux.installed(layout.prefix())
    require(None if folder else "the set-up's Flux build is not installed (scripts/setup.sh)")
    assert folder is not None
    return folder


def user_spack(dest: Path, setup: Path) -> Path:
    """The project's Spack as a user installs it without root (`python3 -m upstream install spack` makes it in
    ~/.local/share/parsl-mpi-stack): the set-up's copied, setup-env.sh naming DEST, its cache holding the pinned
    spack-packages (a link to the set-up's, offline) and a warm index of them. Its owner's Spack: its store is
    its own spack/opt/spack, which `pack.sh $SPACK_ROOT --with-spack` packs with Spack itself."""
    shutil.copytree(setup / "spack", dest / "spack", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(setup / "python", dest / "python", symlinks=True)
    shutil.copytree(setup / "bin", dest / "bin")  # the wrapper finds its folder from its own path
    (dest / "setup-env.sh").write_text((setup / "setup-env.sh").read_text().replace(str(setup), str(dest)))
    (dest / "config").mkdir()
    (dest / "cache").mkdir()
    repos = (setup / "cache" / PACKAGES_LINK).resolve()
    (dest / "cache" / PACKAGES_LINK).mkdir()
    for repo in repos.iterdir():
        (dest / "cache" / PACKAGES_LINK / repo.name).symlink_to(repo.resolve())
    if (setup / "cache" / "cache").is_dir():  # Spack's index of the package repository: 2 minutes to rebuild
        shutil.copytree(setup / "cache" / "cache", dest / "cache" / "cache", symlinks=True)
    return dest


def fresh_clone(dest: Path) -> Path:
    """A clone of this checkout as it is (HEAD, then its uncommitted changes and new files)."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(PROJECT), str(dest)], check=True)
    diff = subprocess.run(["git", "-C", str(PROJECT), "diff", "HEAD", "--binary"], check=True,
                          capture_output=True).stdout
    if diff:
        subprocess.run(["git", "-C", str(dest), "apply", "--whitespace=nowarn"], input=diff, check=True)
    new = subprocess.run(["git", "-C", str(PROJECT), "ls-files", "--others", "--exclude-standard", "-z"],
                         check=True, capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, new):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / name, dest / name)
    assert not (dest / ".venv").exists()
    return dest


@pytest.fixture(scope="module")
def place(slurm_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Place]:
    """The user, their folder, the project's Spack in it, a fresh clone; removed afterwards, unless a test
    failed (then its path is printed, to read the runs' logs there)."""
    user = userpath.ordinary_user()
    closed = userpath.readable_by_all(slurm_cluster.spec.slurm_conf)
    if closed:
        pytest.fail(f"the user cannot read the cluster's slurm.conf: {closed}")
    top = user.home / f"cluster-path-{uuid.uuid4().hex[:6]}"
    top.mkdir()
    try:
        spack = user_spack(top / "spack-1.0.2", _setup_spack())
        clone = fresh_clone(top / "parsl-mpi-stack")
        user.own(top)
        client = {k: v for k, v in client_env(slurm_cluster.spec).items() if k in userpath.CLIENT_VARS}
        yield Place(user, top, spack, clone, client)
    finally:
        if request.session.testsfailed:
            print(f"\ncluster path: a test failed, its folder is kept: {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
            shutil.rmtree(user.home / ".spack", ignore_errors=True)  # the redeployed Spack's default cache


def spack_line(p: Place) -> str:
    return f". {shlex.quote(str(p.spack / 'setup-env.sh'))}"


@pytest.fixture(scope="module")
def installed(place: Place) -> Place:
    """The lock fake-installed by the user's Spack, the stand-ins put into its prefixes."""
    _check(place.bash(f"{spack_line(place)}\nspack -e . install --fake --only-concrete"), "spack install --fake")
    out = _check(place.bash(f"{spack_line(place)}\n" + "\n".join(
        f"spack -e . location -i {name}" for name in standins.PACKAGES)), "spack location -i")
    prefixes = dict(zip(standins.PACKAGES, (Path(line) for line in out.split()), strict=True))
    standins.install(prefixes, _setup_flux())
    place.user.own(place.spack / "spack" / "opt")
    return place


@pytest.fixture(scope="module")
def built(installed: Place) -> subprocess.CompletedProcess[str]:
    """scripts/build-env.sh, as the README's first line, by the user."""
    return installed.bash(f"{spack_line(installed)}\nscripts/build-env.sh")


RUN_ALL = """
spack env activate .
eval "$(python3 -m workflows.environment)"
echo "shell python=$(command -v python)"
echo "shell PATH=$PATH"
echo "shell PYTHONPATH=${PYTHONPATH:-}"
mkdir -p logs
"""


def run_all(p: Place, activate: str, tag: str) -> dict[str, dict]:
    """Every variant run in one shell after ACTIVATE and the README's two lines: {variant: its outcome}."""
    lines = [activate, RUN_ALL]
    for args in VARIANTS:
        name = "-".join(args).replace("--launcher-", "")
        lines.append(f"if python workflows/run.py {' '.join(args)} --repeats {REPEATS} --json "
                     f">logs/{tag}-{name}.out 2>logs/{tag}-{name}.err; then rc=0; else rc=$?; fi\n"
                     f"echo \"variant {name} $rc $(tail -n 1 logs/{tag}-{name}.out)\"")
    out = _check(p.bash("\n".join(lines), timeout=1500), f"the variants ({tag})")
    return {"shell": dict(line[len("shell "):].split("=", 1) for line in out.splitlines() if line.startswith("shell ")),
            "variants": {w[1]: {"rc": int(w[2]), "result": w[3] if len(w) > 3 else None}
                         for w in (line.split() for line in out.splitlines() if line.startswith("variant "))}}


def assert_verified(p: Place, outcome: dict, conda_bin: Path, tag: str) -> None:
    """Every variant exited 0 with a verified result.json in the clone's runs/, conda's python first."""
    shell = outcome["shell"]
    assert shell["python"] == str(conda_bin / "python"), shell
    assert ".venv" not in shell["PATH"] and ".venv" not in shell["PYTHONPATH"], shell
    failed = {}
    for args in VARIANTS:
        name = "-".join(args).replace("--launcher-", "")
        got = outcome["variants"].get(name)
        result = Path(got["result"]) if got and got["result"] else None
        ok = got is not None and got["rc"] == 0 and result is not None and result.is_file()
        if ok and result is not None:
            data = json.loads(result.read_text())
            ok = data.get("verified") is True and result.is_relative_to(p.clone / "runs")
        if not ok:
            err = (p.clone / "logs" / f"{tag}-{name}.err")
            told = err.read_text()[-3000:] if err.exists() else ""
            if result is not None and result.is_file():
                told += "\nresult.json: " + result.read_text()[-3000:]
            failed[name] = (got, told)
    assert not failed, "\n".join(f"{n}: {g}\n{e}" for n, (g, e) in failed.items())


def conda_bin(p: Place, activate: str) -> Path:
    out = _check(p.bash(f"{activate}\nspack env activate .\nspack location -i miniconda3"), "location miniconda3")
    return Path(out.split()[-1]) / "bin"


def test_build_env_checks_the_lock_installs_and_puts_parsl_into_conda(built: subprocess.CompletedProcess[str],
                                                                       installed: Place) -> None:
    out = _check(built, "scripts/build-env.sh")
    assert "spack load openmpi" in out and out.rstrip().endswith("spack load miniconda3"), out
    conda = conda_bin(installed, spack_line(installed))
    check = installed.bash(f"env -u PYTHONPATH {conda}/python -c 'import parsl; print(parsl.__file__)'")
    assert str(conda.parent) in _check(check, "parsl in conda's Python")


def test_every_variant_verifies_as_the_user(built: subprocess.CompletedProcess[str], installed: Place) -> None:
    _check(built, "scripts/build-env.sh")
    activate = spack_line(installed)
    assert_verified(installed, run_all(installed, activate, "built"), conda_bin(installed, activate), "built")


def test_every_variant_verifies_after_pack_and_a_relocating_redeploy(built: subprocess.CompletedProcess[str],
                                                                    installed: Place) -> None:
    _check(built, "scripts/build-env.sh")
    p = installed
    other = p.top / "other"  # a shorter prefix than the Spack root it was built in
    root = p.spack / "spack"
    assert len(str(other)) != len(str(root))
    out = _check(p.bash(f"{spack_line(p)}\nscripts/pack.sh \"$SPACK_ROOT\" -o {p.top}/bundles/ --with-spack"),
                 "scripts/pack.sh")
    bundle = next((p.top / "bundles").glob("bundle-*.tar.zst"))
    _check(p.bash(f"scripts/redeploy.sh {bundle} --prefix {other} --relocate"), "scripts/redeploy.sh")
    assert (other / ".bundle" / "env.sh").is_file(), out
    # The redeployed Spack has no SPACK_USER_CACHE_PATH of the set-up's: its cache is ~/.spack, where Spack
    # clones the pinned spack-packages on first use; offline here, the clone is a link to the set-up's copy.
    cache = p.user.home / ".spack" / PACKAGES_LINK
    cache.mkdir(parents=True, exist_ok=True)
    for repo in (p.spack / "cache" / PACKAGES_LINK).iterdir():
        if not (cache / repo.name).exists():
            (cache / repo.name).symlink_to(repo.resolve())
    p.user.own(p.user.home / ".spack")
    activate = f". {other}/.bundle/env.sh"
    conda = conda_bin(p, activate)
    assert conda.is_relative_to(other), conda
    shutil.rmtree(root / "opt")  # nothing of the built tree left to use by mistake
    assert_verified(p, run_all(p, activate, "redeployed"), conda, "redeployed")
