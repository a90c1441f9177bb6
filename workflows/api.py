"""Your own MPI program through a variant, from Python: what `python workflows/run.py VARIANT --command ...`
does, as a few functions (importable as `from workflows import ...`; docs/own-program.md).

    s = workflows.settings_for("mpi", nodes_per_run=2)     # checked, on the partition Slurm reports
    with workflows.loaded(s):                              # parsl.load(config(s)); every Slurm job cancelled after
        future = workflows.submit(s, ["./app", "in.dat"], stdout="a.out", stderr="a.err")
        future.result()
    print(workflows.where_ran("a.out").nodes)

Or the pieces: config() is the variant's parsl.Config, launch_line() one MPI run's bash line (the variant's
rank launcher, --run-timeout, the wrapper that records where each rank ran), mpi_run the bash app for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import command, environment, outputs, session, slurm, variants
from .settings import Settings, SettingsError, default_run_dir, new_tag

if TYPE_CHECKING:
    from parsl.config import Config
    from parsl.dataflow.futures import AppFuture


def settings_for(variant: str, **fields: Any) -> Settings:
    """Checked Settings of a variant, with run.py's defaults: the partition's shape read from Slurm unless
    cpus_per_node and cluster_nodes are given, spack loads when spack is on PATH, this Python's venv on the
    workers, the variant's first rank launcher, a fresh tag for cleanup. Bad settings: SettingsError (one line)."""
    if variant not in variants.REGISTRY:
        raise SettingsError(f"unknown variant {variant!r} (choose from {', '.join(variants.REGISTRY)})")
    run_dir = Path(fields.pop("run_dir")).absolute() if "run_dir" in fields else default_run_dir(variant)
    if "cpus_per_node" not in fields or "cluster_nodes" not in fields:
        nodes = slurm.partition_nodes(fields.get("partition"))
        fields = {"cpus_per_node": min(nodes.values()), "cluster_nodes": len(nodes), **fields}
    use_spack = fields.pop("use_spack", shutil.which("spack") is not None)
    defaults = {"loads": environment.DEFAULT_LOADS if use_spack else (), "venv": environment.current_venv(),
                "rank_launcher": variants.get(variant).rank_launchers[0], "tag": new_tag()}
    own = {o.field for o in variants.get(variant).options}  # e.g. flux_wrapper="parsl": the variant's own option
    given = tuple((k, str(fields.pop(k))) for k in sorted(own & fields.keys()))
    s = Settings(variant=variant, run_dir=run_dir, use_spack=use_spack, variant_options=given,
                 **{**defaults, **fields})
    environment.check_order(s.loads)
    missing = variants.checked(s).unavailable(s)
    if missing:
        raise SettingsError(missing)
    return s


def config(variant: str | Settings, **fields: Any) -> Config:
    """The variant's parsl.Config (settings_for(variant, **fields) unless Settings are given), this process
    ready for it (the run directory made, Flux's bindings importable where the variant needs them)."""
    s = variant if isinstance(variant, Settings) else settings_for(variant, **fields)
    s.run_dir.mkdir(parents=True, exist_ok=True)
    session.scripts_on_path()
    chosen = variants.get(s.variant)
    chosen.prepare(s)
    return chosen.config(s)


def launch_line(s: Settings, program: str | Sequence[str], cwd: Path | None = None) -> str:
    """The bash line of one MPI run of program (a command line, or its words): the variant's rank launcher
    starts it on s.nodes_per_run nodes, each rank through the wrapper that records where it ran, in cwd
    (default: this directory), ended after s.run_timeout seconds. Its wrapper is written into s.run_dir."""
    from . import submission

    words = command.argv(program) if isinstance(program, str) else tuple(program)
    if not words:
        raise command.CommandError("the program is empty: give the MPI program and its arguments")
    cwd = (cwd or Path.cwd()).absolute()
    key = hashlib.sha256(repr((words, str(cwd))).encode()).hexdigest()[:12]
    s.run_dir.mkdir(parents=True, exist_ok=True)
    wrapper = submission.write_wrapper(s.run_dir / f"command-{key}.sh", words, cwd)
    chosen = variants.get(s.variant)
    return submission.run_line(chosen.run_command(s, str(wrapper)), s.run_timeout, stamped=chosen.wrapper_stamps(s))


def resources(s: Settings) -> dict[str, Any]:
    """mpi_run's keyword arguments for one run under these settings: its walltime and, where the variant
    places runs through Parsl, its parsl_resource_specification."""
    spec = variants.get(s.variant).run_resources(s)
    return {"walltime": s.run_timeout + 30, **({} if spec is None else {"parsl_resource_specification": spec})}


def submit(s: Settings, program: str | Sequence[str], stdout: str | Path, stderr: str | Path,
           cwd: Path | None = None) -> AppFuture:
    """One MPI run of program as a Parsl app (Parsl must be loaded with config(s): see loaded()); its future's
    result is 0, or it raises BashExitFailure with the program's exit status (--retries retry it first)."""
    from .submission import mpi_run

    return mpi_run(launch_line(s, program, cwd), stdout=str(stdout), stderr=str(stderr), **resources(s))


@contextlib.contextmanager
def loaded(s: Settings) -> Iterator[session.Session]:
    """Parsl loaded with config(s) for the block; after it, Parsl shut down and every Slurm job of s cancelled,
    however the block ends (the run command's own cleanup)."""
    with session.parsl_loaded(config(s), s.tag, "workflows") as loaded_session:
        yield loaded_session


def where_ran(stdout: str | Path, stderr: str | Path = "", exit_status: int | None = None) -> outputs.CommandRun:
    """Where a run's ranks ran (node, CPUs, by rank) and its start and end, read from its stdout file; stderr
    and exit_status are only recorded in the result."""
    text = Path(stdout).read_text(errors="replace")
    return outputs.parse_command(0, str(stdout), str(stderr), text, exit_status)


def cancel(future: AppFuture) -> bool:
    """Cancel an app's current try; True when it is cancelled (docs/flux.md, "Cancelling a run").

    Parsl's AppFuture.cancel() raises NotImplementedError, and its executors' futures cancel only a try that
    has not started. Under the flux variant (DirectFluxExecutor) a running try's Flux job is cancelled too:
    Flux kills every rank, and this returns once the job has ended and its nodes are free. The app then fails
    with concurrent.futures.CancelledError, not retried under the variants' configs.
    """
    from .flux import parsl_seam

    try_future = parsl_seam.executor_future(future)
    return bool(try_future is not None and try_future.cancel())
