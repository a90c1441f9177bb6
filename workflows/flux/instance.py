"""Finding the Flux that runs, its Python bindings, and how a block starts a Flux instance.

Nothing here is set by hand: the bindings' folder comes from the `flux` on PATH (`flux env`
prints the PYTHONPATH Flux's own Python commands use), and it is checked in the Python that runs
Parsl before anything is submitted. Each failure is one line saying what is missing and how to get it.
The flux variant's instance binds each task of a job to its own core (shell_initrc.lua, beside this).
Every instance a block starts has the CPUs Slurm allocated, not the cores hwloc finds: its brokers start
with a config written from the job's Slurm environment (workflows.flux.allocation).
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parsl.launchers import SimpleLauncher

# The job survives a lost node (Slurm would kill it otherwise) and so does the srun that starts the
# brokers; Flux then drains the dead node and runs the rest on the others.
SBATCH_NO_KILL = "#SBATCH --no-kill\n"
SRUN_OPTIONS = "--mpi=pmi2 --no-kill"
INITRC = Path(__file__).resolve().parent / "shell_initrc.lua"
HOW_TO_GET = ("run scripts/setup.sh (with PARSL_MPI_STACK_SOURCES=DIR where upstream cannot be reached) and "
              "eval \"$(scripts/local-cluster.sh env)\", or on a cluster `spack load flux-sched`")


def flux_command() -> str | None:
    return shutil.which("flux")


@functools.lru_cache(maxsize=4)
def bindings_path(flux: str) -> str | None:
    """The folder(s) holding Flux's `flux` Python package, as that flux reports them."""
    try:
        out = subprocess.run([flux, "env"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and words[1].startswith("PYTHONPATH="):
            return words[1].split("=", 1)[1].strip(":") or None
    return None


def _imports(path: str | None) -> str | None:
    """None when `import flux` works in this Python with `path` first on its path, else the error line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", "import flux, flux.job"], env=env, capture_output=True,
                          text=True, timeout=60)
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {proc.returncode}"


def missing(*, bindings: bool) -> str | None:
    """Why Flux cannot be used from here (one line), or None. bindings: Parsl's Python must import them."""
    flux = flux_command()
    if flux is None:
        return f"flux not found on PATH: {HOW_TO_GET}"
    if not bindings:
        return None
    path = bindings_path(flux)
    error = _imports(path)
    if error:
        where = f" from {path}" if path else " (flux env names no PYTHONPATH)"
        return (f"Flux's Python bindings{where} do not import in {sys.executable} ({error}): they must be built "
                f"for this Python's version, and cffi installed in it (pip install cffi)")
    return None


def activate_bindings() -> None:
    """Put the bindings of the flux on PATH first on this process's (and its children's) PYTHONPATH."""
    flux = flux_command()
    path = bindings_path(flux) if flux else None
    if path:
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")]))
        sys.path[:0] = [p for p in path.split(os.pathsep) if p not in sys.path]


def resource_config(directory: str) -> str:
    """The shell path of a block's broker config (its Slurm job id in the name): see workflows.flux.allocation."""
    return f"{shlex.quote(directory)}/resource-$SLURM_JOB_ID.toml"


def write_resource_config(config: str, python: str = sys.executable) -> str:
    """The shell command that writes it from the job's Slurm environment (fails the block if it cannot)."""
    return f"{shlex.quote(python)} -m workflows.flux.allocation {config}"


def start_command(nodes: int, program: str, config: str) -> str:
    """One broker per node of the block with the Slurm allocation's config, the program as the initial program."""
    return f"srun {SRUN_OPTIONS} -N {nodes} --ntasks-per-node=1 flux start -c {config} {program}"


def default_initrc(flux: str) -> Path:
    """Flux's own job-shell initrc, which ours sources after setting its options."""
    return Path(flux).resolve().parents[1] / "etc" / "flux" / "shell" / "initrc.lua"


def launch_cmd(worker_init: str, flux: str, bindings: str | None, config_dir: str) -> str:
    """FluxExecutor's launch command, run by srun on every node of the block: the loads, Flux's bindings on
    PYTHONPATH, the broker config of the Slurm allocation (into config_dir, which every node sees), then
    `flux start` with it and our initrc."""
    from parsl.executors import FluxExecutor

    config = resource_config(config_dir)
    lines = [*worker_init.splitlines(), f"export WORKFLOWS_FLUX_INITRC={shlex.quote(str(default_initrc(flux)))}"]
    if bindings:
        lines.append(f"export PYTHONPATH={shlex.quote(bindings)}${{PYTHONPATH:+:$PYTHONPATH}}")
    # FluxExecutor str.format()s the launch command: the shell's braces must survive that.
    env = "; ".join(lines).replace("{", "{{").replace("}", "}}")
    write = write_resource_config(config).replace("{", "{{").replace("}", "}}")
    start = FluxExecutor.DEFAULT_LAUNCH_CMD.replace(
        "{flux} start", f"{{flux}} start -c {config} -Sconf.shell_initrc={shlex.quote(str(INITRC))}")
    return f"{env}; {write} && {start}"


def block_launcher() -> SimpleLauncher:
    """MPIExecutor's block (it insists on a SimpleLauncher): the worker pool as a Flux instance's program."""
    from parsl.launchers import SimpleLauncher

    class FluxStart(SimpleLauncher):
        def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
            script = f"{script_dir or '.'}/flux_block_$SLURM_JOB_ID.sh"
            # Flux drops SLURM_* from its initial program's environment: MPIExecutor needs the node list
            # (read through scontrol, which needs the configuration's path where it is not the default)
            keep = "${SLURM_CONF:+SLURM_CONF=$SLURM_CONF} SLURM_NODELIST=$SLURM_NODELIST SLURM_JOB_ID=$SLURM_JOB_ID"
            config = resource_config(script_dir or ".")
            start = start_command(nodes_per_block, f"env {keep} bash {script}", config)
            return (f"cat << 'FLUX_BLOCK_EOF' > {script}\n{command}\nFLUX_BLOCK_EOF\n"
                    f"{write_resource_config(config)} && {start}\n")

    return FluxStart()
