"""Everything a workflow run is parameterised by, in one frozen value."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import WorkflowsError
from .launchers import DEFAULT_RANK_LAUNCHER, MPI_FLAVOURS, RANK_LAUNCHERS

SAFE_PATH = re.compile(r"[\w./+,:@%=~-]+")
# The folder this package is imported from (the checkout, or site-packages): workers import workflows.launch
# from it. projectdir.import_root() says the same, but `python workflows/run.py` (conda's Python, the project
# not installed) loads this package from its folder: PROJECT is where this file is, whatever sys.path holds.
PROJECT = Path(__file__).resolve().parent.parent
SOURCE = Path(__file__).resolve().parent / "mpi_hello.c"  # the MPI hello world each run compiles
NODE_LOCAL = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run"))
SHARED_ENV = "LOCAL_CLUSTER_SHARED"  # folders under NODE_LOCAL that the nodes see all the same (the local cluster's)
RUN_DIR_PROBLEM = "the nodes could not write their outputs there; use a directory on a shared filesystem " \
                  "(the default runs/ in the working directory is, in a checkout on one)"


def shared_paths(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """The folders $LOCAL_CLUSTER_SHARED names (the local cluster re-binds them into its nodes' private /tmp)."""
    return tuple(Path(p) for p in environ.get(SHARED_ENV, "").split(os.pathsep) if p)


def node_local_problem(path: Path, what: str = "--run-dir", why: str = RUN_DIR_PROBLEM,
                       shared: Sequence[Path] = ()) -> str | None:
    """Why the nodes cannot see `path` (under a folder each node has to itself, as /tmp is on real clusters),
    in one line naming it as `what` and saying `why` that matters, or None. Symbolic links are followed."""
    resolved = path.resolve()
    if any(resolved.is_relative_to(folder.resolve()) for folder in shared):
        return None
    local = next((d for d in NODE_LOCAL if resolved.is_relative_to(d)), None)
    if local is None:
        return None
    return f"{what} {path} is under {local}, which each compute node has to itself: {why}"


def unseen_by_nodes(s: Settings, python: Sequence[Path], project: Path, shared: Sequence[Path]) -> str | None:
    """The pre-flight, before anything is submitted: the first of the run's folders that the nodes must see
    and cannot (the run directory, the workers' Python, the project's code), in one line; or None.

    `python`: the prefixes of the Python the workers run (python_prefixes()).
    """
    checks = [(s.run_dir, "--run-dir", RUN_DIR_PROBLEM)]
    checks += [(prefix, "the workers' Python", "they could not start it; use a Python (or venv) on a shared "
                "filesystem") for prefix in python]
    checks += [(project, "the project's code", "the workers import workflows.launch from it; use a checkout "
                "(or a venv it is installed in) on a shared filesystem")]
    return next(filter(None, (node_local_problem(path, what, why, shared) for path, what, why in checks)), None)


def missing_program(words: Sequence[str], cwd: Path) -> str | None:
    """Part of the pre-flight: --command's program given as a path (./app, bin/app) that is not there, in one
    line, or None (no command; a bare name, which is looked up on the nodes)."""
    program = words[0] if words else ""
    if "/" not in program:
        return None
    path = Path(program) if Path(program).is_absolute() else cwd / program
    return None if path.is_file() else f"--command: the program {program} is not a file (looked at {path})"


def python_prefixes(s: Settings) -> list[Path]:
    """Where the workers' Python lives: the venv they activate and the Python it was made from; without a
    venv, this Python, unless the workers load their own (spack load miniconda3)."""
    if s.venv:
        return [Path(s.venv), Path(sys.base_prefix)]
    return [] if s.use_spack else [Path(sys.prefix)]


def new_tag() -> str:
    """A run's own Slurm --comment, on every block job it submits: how it finds and cancels them."""
    return f"parslmpi-{uuid.uuid4().hex[:12]}"


def default_run_dir(variant: str) -> Path:
    """runs/<variant>-<timestamp>, absolute."""
    return (Path("runs") / f"{variant}-{time.strftime('%Y%m%d-%H%M%S')}").absolute()


class SettingsError(WorkflowsError, ValueError):
    """Settings that cannot run; the message is one line."""

    refused = True


@dataclasses.dataclass(frozen=True)
class Settings:
    variant: str
    run_dir: Path
    repeats: int = 4
    nodes_per_run: int = 2
    cpus_per_node: int = 2  # what Slurm gives each node of the partition (read with sinfo)
    cluster_nodes: int = 4  # nodes in the partition
    partition: str | None = None
    account: str | None = None
    walltime: str = "00:20:00"
    scheduler_options: str = ""
    loads: tuple[str, ...] = ()
    use_spack: bool = False
    venv: str | None = None
    address: str | None = None  # where workers reach the interchange
    mpi: str = MPI_FLAVOURS[0]
    rank_launcher: str = DEFAULT_RANK_LAUNCHER  # how a run's ranks start (workflows/launchers.py; --launcher)
    # the variant's own options (variants/base.py Option), field -> value; the variant checks and reads them
    variant_options: tuple[tuple[str, str], ...] = ()
    run_timeout: float = 300.0
    retries: int = 1
    stall_timeout: float = 60.0  # no block able to run for this long: give up
    strategy_period: float = 0.5
    max_lost_blocks: int = 2  # blocks lost to dead first nodes that are replaced, before the run gives up
    tag: str = "parslmpi"  # Slurm --comment on every block job, to find and cancel them
    command: tuple[str, ...] = ()  # the user's MPI program and its arguments (--command); () runs the hello world
    probe: bool = False  # with a command: the hello world's placement proof first (--probe)

    def __post_init__(self) -> None:
        """Each field checked on its own; whether the variant exists and has this rank launcher is the
        registry's check (workflows.variants.checked), which imports this module."""
        if self.rank_launcher not in RANK_LAUNCHERS:
            raise SettingsError(f"--launcher must be one of {', '.join(RANK_LAUNCHERS)}, got {self.rank_launcher!r}")
        for name in ("repeats", "nodes_per_run", "cpus_per_node", "cluster_nodes"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise SettingsError(f"{flag} must be at least 1, got {getattr(self, name)}")
        if self.nodes_per_run > self.cluster_nodes:
            raise SettingsError(f"--nodes-per-run {self.nodes_per_run} is more than the "
                                f"{self.cluster_nodes} nodes of the partition")
        if self.mpi not in MPI_FLAVOURS:
            raise SettingsError(f"--mpi must be one of {', '.join(MPI_FLAVOURS)}, got {self.mpi!r}")
        if not SAFE_PATH.fullmatch(str(self.run_dir)):
            raise SettingsError(f"--run-dir {str(self.run_dir)!r}: spaces and shell characters are not allowed "
                                "(Parsl hands the path to sbatch unquoted)")
        local = node_local_problem(self.run_dir, shared=shared_paths(os.environ))
        if local:
            raise SettingsError(local)
        if self.run_timeout <= 0 or self.stall_timeout <= 0 or self.retries < 0 or self.max_lost_blocks < 0:
            raise SettingsError("--run-timeout and --stall-timeout must be positive, --retries and --max-lost-blocks "
                                "not negative")
        if self.probe and not self.command:
            raise SettingsError("--probe needs --command (without one, the hello world's placement proof is the run)")

    @property
    def outputs(self) -> Path:
        """Where every app's stdout and stderr go (bash apps append: submission.py makes it anew)."""
        return self.run_dir / "outputs"

    @property
    def ranks_per_run(self) -> int:
        return self.nodes_per_run * self.cpus_per_node

    @property
    def concurrent_runs(self) -> int:
        """How many runs fit on the partition at once."""
        return max(1, self.cluster_nodes // self.nodes_per_run)
