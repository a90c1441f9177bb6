"""The variant contract (one small class per executor variant) and what every variant shares.

A variant says how its blocks are shaped and how its apps launch MPI; run.py, demo.py and bench.py
only ever read the registry in workflows/variants/__init__.py. Parsl is imported inside the
methods that build a Config, so listing variants (argparse, demo) stays fast.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, ClassVar

from .. import environment, slurm
from ..launchers import RANK_LAUNCHERS, RankLauncher
from ..settings import PROJECT, Settings

if TYPE_CHECKING:
    from parsl.config import Config
    from parsl.executors.base import ParslExecutor
    from parsl.launchers.base import Launcher as ParslLauncher
    from parsl.providers import SlurmProvider

    from ..placement import Run


@dataclasses.dataclass(frozen=True)
class Option:
    """A command-line option of one variant (`--flag VALUE`, VALUE one of choices, the first by default), kept in
    Settings.variant_options under `field`: declaring it here is all the CLI, Settings and result.json need."""

    flag: str
    field: str
    choices: tuple[str, ...]
    help: str

    @property
    def default(self) -> str:
        return self.choices[0]


class Variant:
    """One executor variant. Subclasses set `name` and `summary` and override the hooks they need."""

    name: ClassVar[str]
    summary: ClassVar[str]
    rank_launchers: ClassVar[tuple[str, ...]]  # how its runs' ranks can start (workflows/launchers.py; first: default)
    options: ClassVar[tuple[Option, ...]] = ()  # its own command-line options

    def option(self, s: Settings, field: str) -> str:
        """The value of this variant's option `field` in these settings (its default where not given)."""
        declared = next(o for o in self.options if o.field == field)
        return dict(s.variant_options).get(field, declared.default)

    def option_problem(self, s: Settings) -> str | None:
        """Why these settings' variant options do not fit this variant (one line), or None."""
        declared = {o.field: o for o in self.options}
        for field, value in s.variant_options:
            o = declared.get(field)
            if o is None:
                return f"--{field.replace('_', '-')} is not an option of the {self.name} variant"
            if value not in o.choices:
                return f"{o.flag} must be one of {', '.join(o.choices)}, got {value!r}"
        return None

    def block_nodes(self, s: Settings) -> int:
        """Nodes per block: the stall watch compares it with the partition's usable nodes."""
        return s.nodes_per_run

    def config(self, s: Settings) -> Config:
        raise NotImplementedError

    def run_command(self, s: Settings, binary: str) -> str:
        """The shell command of one MPI run."""
        raise NotImplementedError

    def run_resources(self, s: Settings) -> dict[str, Any] | None:
        """parsl_resource_specification of one MPI run."""
        return None

    def compile_resources(self, s: Settings) -> dict[str, Any] | None:
        return None

    def prepare(self, s: Settings) -> None:
        """Set up this process before Parsl loads the config (e.g. make a module importable)."""

    def unavailable(self, s: Settings) -> str | None:
        """Why this variant cannot run here (one line that says how to get what is missing), or None."""
        return None

    def wrapper_stamps(self, s: Settings) -> bool:
        """Whether the run's command gets start/end stamps around it: not where the rank launcher stamps each rank."""
        return True

    def monitoring_unsupported(self, s: Settings) -> str | None:
        """Why Parsl's MonitoringHub cannot watch this variant with these settings' rank launcher and options (one
        line), or None."""
        return None

    def job_records(self, s: Settings, config: Config, runs: list[Run]) -> list[dict[str, Any]]:
        """A monitored run's Flux jobs (monitoring.record_jobs): where each ran, as Flux placed it."""
        return []

    def problems(self, s: Settings, block_samples: list[tuple[float, int]]) -> list[str]:
        """Variant-specific checks of a finished run, beyond placement."""
        return []

    def block_watch(self, s: Settings, config: Config) -> Callable[[str, str], str] | None:
        """What to do when a running block loses its first node (job id, node): the stall watch calls it.

        None: the variant needs no help (htex's blocks hold one run each; the flux executor replaces its own).
        """
        return None

    def lost_blocks(self, config: Config) -> list[dict[str, Any]]:
        """The blocks the executor itself found lost and replaced, for result.json."""
        return []


def rank_launcher(s: Settings) -> RankLauncher:
    return RANK_LAUNCHERS[s.rank_launcher]


def concurrent_blocks(s: Settings) -> int:
    """How many MPI runs can usefully run at once: what fits on the partition, at most the repeats."""
    return min(s.concurrent_runs, s.repeats)


def worker_init(s: Settings) -> str:
    """The ordered loads (miniconda3 last), then the project on PYTHONPATH for workflows.launch."""
    lines = environment.shell_lines(s.loads, spack=s.use_spack, venv=s.venv)
    lines.append(f"export PYTHONPATH={shlex.quote(str(PROJECT))}${{PYTHONPATH:+:$PYTHONPATH}}")
    return "\n".join(lines)


STATUS_POLL = 2  # seconds: how soon Parsl's strategy sees a cancelled block gone (SlurmProvider's own: 60)


def slurm_provider(s: Settings, *, nodes_per_block: int, blocks: tuple[int, int, int], launcher: ParslLauncher,
                   parallelism: float = 1.0, sbatch_options: str = "", polled: bool = False) -> SlurmProvider:
    """A SlurmProvider whose every block carries this run's --comment, so cleanup finds it.

    `blocks` is (init, min, max); `sbatch_options` are the variant's own '#SBATCH' lines. polled: the
    block states are read every STATUS_POLL seconds, so a lost block's replacement is asked for at once.
    """
    from parsl.providers import SlurmProvider

    class PolledSlurmProvider(SlurmProvider):
        @property
        def status_polling_interval(self) -> int:
            return STATUS_POLL

    init, lo, hi = blocks
    options = f"#SBATCH --comment={s.tag}\n" + sbatch_options + s.scheduler_options
    return (PolledSlurmProvider if polled else SlurmProvider)(
        partition=s.partition or "", account=s.account, nodes_per_block=nodes_per_block,
        init_blocks=init, min_blocks=lo, max_blocks=hi, parallelism=parallelism,
        walltime=s.walltime, scheduler_options=options,
        worker_init=worker_init(s), launcher=launcher,
        exclusive=True, cmd_timeout=30)


def parsl_config(s: Settings, executor: ParslExecutor, **kw: Any) -> Config:
    """The Config every variant uses around its one executor: run dir, retries, scaling period; a block lost
    under a run does not use up the run's retries (InfrastructureRetries)."""
    from parsl.config import Config

    return Config(executors=[executor], run_dir=str(s.run_dir / "runinfo"), retries=s.retries,
                  strategy_period=s.strategy_period, retry_handler=InfrastructureRetries(s.retries, s.max_lost_blocks),
                  **kw)


@dataclasses.dataclass
class InfrastructureRetries:
    """Parsl's retry_handler: a task lost with its worker pool (ManagerLost, WorkerLost) costs no retry.

    Up to max_lost_blocks pools may be lost so; past that the cluster keeps dying and such a task fails at
    once. A cancelled try is not retried. Every other failure costs 1, as without a handler.
    `lost` keeps (time, host, the task's stdout).
    """

    retries: int
    max_lost_blocks: int
    lost: list[tuple[float, str, str]] = dataclasses.field(default_factory=list)
    managers: set[str] = dataclasses.field(default_factory=set)

    def __call__(self, exc: BaseException, task_record: Any) -> float:
        from concurrent.futures import CancelledError

        from parsl.executors.high_throughput.errors import ManagerLost, WorkerLost

        if isinstance(exc, CancelledError):
            return float(self.retries + 1)  # cancelled on purpose (workflows.cancel): not tried again
        if not isinstance(exc, (ManagerLost, WorkerLost)):
            return 1.0
        self.managers.add(str(getattr(exc, "manager_id", getattr(exc, "worker_id", ""))))
        host = str(getattr(exc, "hostname", "?"))
        self.lost.append((time.time(), host, str(task_record.get("kwargs", {}).get("stdout", ""))))
        return 0.0 if len(self.managers) <= self.max_lost_blocks else float(self.retries + 1)


def refit(provider: Any, dead: Collection[str], s: Settings, most_nodes: int) -> str:
    """Size and place the provider's next block on the usable nodes but the dead ones: what was done, one line.

    As many whole runs as still fit, at most the block's first size; the dead nodes are excluded (Slurm may
    not have marked them down yet).
    """
    usable = set(slurm.usable_nodes(s.partition)) - set(dead)
    nodes = max(s.nodes_per_run, min(most_nodes, len(usable) // s.nodes_per_run * s.nodes_per_run))
    provider.nodes_per_block = nodes
    base = provider.scheduler_options.split("#SBATCH --exclude=")[0]
    provider.scheduler_options = base + (f"#SBATCH --exclude={','.join(sorted(dead))}\n" if dead else "")
    return f"the next block: {nodes} nodes, without {','.join(sorted(dead)) or 'none'}"


def launch_in_block(s: Settings, binary: str, source: str) -> str:
    """The command that launches one MPI run from a worker (see workflows/launch.py)."""
    return (f"python -m workflows.launch --source {source} --mpi {s.mpi} --launcher {s.rank_launcher} "
            f"--time-limit {s.run_timeout:g} -- {shlex.quote(binary)}")
