"""Stand-ins for the compiled packages of a fake-installed Spack environment (tests/test_cluster_path.py).

`spack install --fake` makes every store path of the lock, with a spec and Spack's records, but no real
binaries (an empty `bin/<name>`). Compiling the locked environment takes hours on CI's 2 cores, so only the
compiled parts stand in, inside the fake prefixes, where Spack's own `spack load` (the package recipes'
setup_run_environment) points:

- miniconda3: a venv of the system python3 (`python3 -m venv --copies`, with pip) in place of conda's
  base env, and the `etc/profile.d/conda.sh` the recipe sources (a few exports, as conda's does first).
  build-env.sh's own pip step then installs env/parsl-requirements.txt into it.
- python-venv: a venv of the system python3 (`--without-pip`), as Spack's is a venv of its python: the
  recipe runs its `bin/python3` to find site-packages for every Python extension it loads (flux-core).
- flux-core: `bin/flux`, a script that execs the set-up's Flux build (core and sched in one prefix, see
  upstream/flux.py), a copy of that build's Python bindings in `lib/python3.12/site-packages` (where the
  recipe puts PYTHONPATH; built for the system Python 3.11), of its `etc/flux` (the job shell's initrc) and
  of its `lib/flux/connectors` (the recipe's FLUX_CONNECTOR_PATH, which replaces libflux's own).
  flux-sched needs nothing of its own: the set-up's flux loads Fluxion from its own prefix.
- openmpi: `bin/mpirun`, `bin/mpicc`, ... scripts that exec Debian's Open MPI (4.1, Slurm-aware).

Scripts and copies, never symlinks: a bundle refuses a symlink that leaves its store path.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SYSTEM_PYTHON = Path("/usr/bin/python3")
OPENMPI_TOOLS = ("mpirun", "mpiexec", "mpicc", "mpicxx", "mpic++", "mpif77", "mpif90", "mpifort", "ompi_info")
FLUX_SITE = "lib/python3.12/site-packages"  # flux-core's recipe: lib/python<its python's X.Y>/site-packages
FLUX_PACKAGES = ("flux", "_flux", "fluxion")


def exec_script(path: Path, target: Path | str, what: str) -> None:
    """PATH/NAME: a shell script that runs TARGET with its arguments (what: the line saying it stands in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()  # the fake install's empty bin/<name>
    path.write_text(f"#!/bin/sh\n# stand-in (tests/standins.py): {what}\nexec {target} \"$@\"\n")
    path.chmod(0o755)


def system_venv(prefix: Path, *, pip: bool) -> None:
    """PREFIX made a venv of the system python3, its interpreter copied in (no symlink out of the prefix)."""
    for name in ("python", "python3"):
        if (prefix / "bin" / name).exists():
            (prefix / "bin" / name).unlink()  # fake files of the install
    args = [str(SYSTEM_PYTHON), "-m", "venv", "--copies", *([] if pip else ["--without-pip"]), str(prefix)]
    subprocess.run(args, check=True, capture_output=True, text=True)


def conda(prefix: Path) -> None:
    """miniconda3: python, python3 and pip of a system-Python venv; the conda.sh the recipe sources."""
    system_venv(prefix, pip=True)
    profile = prefix / "etc" / "profile.d" / "conda.sh"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text("# stand-in (tests/standins.py) for conda's conda.sh: its first exports, no conda command\n"
                       f"export CONDA_PYTHON_EXE='{prefix}/bin/python'\n"
                       "export CONDA_SHLVL=0\n")


def python_venv(prefix: Path) -> None:
    """python-venv: what its recipe runs (bin/python3) to find the site-packages of Python extensions."""
    system_venv(prefix, pip=False)


def flux_core(prefix: Path, flux_build: Path) -> None:
    """flux-core: bin/flux runs the set-up's Flux build; its bindings and etc/flux copied into the prefix."""
    exec_script(prefix / "bin" / "flux", flux_build / "bin" / "flux", f"Flux, the set-up's build in {flux_build}")
    site = prefix / FLUX_SITE
    site.mkdir(parents=True, exist_ok=True)
    built = next((flux_build / "lib").glob("python3*/site-packages"))
    for name in FLUX_PACKAGES:
        if (built / name).is_dir():
            shutil.copytree(built / name, site / name, symlinks=False, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(flux_build / "etc" / "flux", prefix / "etc" / "flux", symlinks=False, dirs_exist_ok=True)
    # FLUX_CONNECTOR_PATH (the recipe's) replaces libflux's own: the ssh:// connector FluxExecutor uses
    shutil.copytree(flux_build / "lib" / "flux" / "connectors", prefix / "lib" / "flux" / "connectors",
                    symlinks=False, dirs_exist_ok=True)


def openmpi(prefix: Path) -> None:
    """openmpi: its commands run Debian's Open MPI (/usr/bin)."""
    for tool in OPENMPI_TOOLS:
        if (Path("/usr/bin") / tool).exists():
            exec_script(prefix / "bin" / tool, Path("/usr/bin") / tool, f"Open MPI, Debian's /usr/bin/{tool}")


def install(prefixes: dict[str, Path], flux_build: Path) -> None:
    """Every stand-in into its package's prefix (prefixes: package name -> `spack location -i` of it)."""
    conda(prefixes["miniconda3"])
    python_venv(prefixes["python-venv"])
    flux_core(prefixes["flux-core"], flux_build)
    openmpi(prefixes["openmpi"])


PACKAGES = ("miniconda3", "python-venv", "flux-core", "openmpi")
