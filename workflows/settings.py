"""Everything a workflow run is parameterised by, in one frozen value."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .launchers import DEFAULT_RANK_LAUNCHER, MPI_FLAVOURS, RANK_LAUNCHERS

SAFE_PATH = re.compile(r"[\w./+,:@%=~-]+")
PROJECT = Path(__file__).resolve().parent.parent  # nodes must see it: workers import workflows.launch from it
FLUX_WRAPPERS = ("direct", "parsl")  # the flux variant's bash apps: the command itself, or Parsl's Python wrapper
NODE_LOCAL = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run"))


def node_local_problem(run_dir: Path, project: Path = PROJECT) -> str | None:
    """A run directory the nodes cannot see (private /tmp and friends, as on real clusters), or None.

    Inside the project is fine even under /tmp: the nodes must see the project anyway.
    """
    path = run_dir if run_dir.is_absolute() else Path.cwd() / run_dir
    if path.is_relative_to(project):
        return None
    local = next((d for d in NODE_LOCAL if path.is_relative_to(d)), None)
    if local is None:
        return None
    return (f"--run-dir {run_dir} is under {local}, which each node has to itself: the nodes could not write "
            "their outputs there; use a directory on a shared filesystem (the default runs/ in the project is)")


class SettingsError(ValueError):
    """Settings that cannot run; the message is one line."""


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
    flux_wrapper: str = FLUX_WRAPPERS[0]
    run_timeout: float = 300.0
    retries: int = 1
    stall_timeout: float = 60.0  # no block able to run for this long: give up
    strategy_period: float = 0.5
    tag: str = "parslmpi"  # Slurm --comment on every block job, to find and cancel them
    command: tuple[str, ...] = ()  # the user's MPI program and its arguments (--command); () runs the hello world
    probe: bool = False  # with a command: the hello world's placement proof first (--probe)

    def __post_init__(self) -> None:
        """Each field checked on its own; whether the variant exists and has this rank launcher is the
        registry's check (workflows.variants.checked), which imports this module."""
        if self.rank_launcher not in RANK_LAUNCHERS:
            raise SettingsError(f"--launcher must be one of {', '.join(RANK_LAUNCHERS)}, got {self.rank_launcher!r}")
        if self.flux_wrapper not in FLUX_WRAPPERS:
            raise SettingsError(f"--flux-wrapper must be one of {', '.join(FLUX_WRAPPERS)}, got {self.flux_wrapper!r}")
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
        local = node_local_problem(self.run_dir)
        if local:
            raise SettingsError(local)
        if self.run_timeout <= 0 or self.stall_timeout <= 0 or self.retries < 0:
            raise SettingsError("--run-timeout and --stall-timeout must be positive, --retries not negative")
        if self.probe and not self.command:
            raise SettingsError("--probe needs --command (without one, the hello world's placement proof is the run)")

    @property
    def ranks_per_run(self) -> int:
        return self.nodes_per_run * self.cpus_per_node

    @property
    def concurrent_runs(self) -> int:
        """How many runs fit on the partition at once."""
        return max(1, self.cluster_nodes // self.nodes_per_run)
