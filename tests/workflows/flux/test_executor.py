"""DirectFluxExecutor at Parsl's level, next to Parsl's own FluxExecutor, in a local two-broker Flux instance.

Each test runs against both executors (parametrised fixture): what a user relies on from a bash or
Python app must be the same. Where the direct path differs on purpose (no Python in the ranks, the
highest exit status over ranks, walltime ending the job), the test says so.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import parsl
import pytest
from parsl.app.app import bash_app, python_app
from parsl.app.errors import AppTimeout, BashExitFailure, MissingOutputs
from parsl.config import Config
from parsl.data_provider.files import File
from parsl.executors import FluxExecutor
from parsl.providers import LocalProvider

from workflows.flux import instance as flux_instance
from workflows.flux.executor import DirectFluxExecutor
from workflows.settings import PROJECT
from workflows.variants.base import InfrastructureRetries

from ...needs import require
from ..processes import processes_named

pytestmark = pytest.mark.flux
BROKERS = 2


@dataclasses.dataclass
class Instance:
    kind: str  # "direct" or "parsl"
    dir: Path


def launch_cmd() -> str:
    """Parsl's own launch command, with two brokers and Flux's bindings for the instance manager."""
    flux = flux_instance.flux_command() or "flux"
    bindings = flux_instance.bindings_path(flux) or ""
    return (f"export PYTHONPATH={shlex.quote(bindings)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
            + FluxExecutor.DEFAULT_LAUNCH_CMD.replace("{flux} start", f"{{flux}} start --test-size={BROKERS}"))


def executor(kind: str, d: Path) -> FluxExecutor:
    cls = DirectFluxExecutor if kind == "direct" else FluxExecutor
    return cls(label="flux", working_dir=str(d / "flux"), flux_path=flux_instance.flux_command(),
               launch_cmd=launch_cmd(), provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1))


@pytest.fixture(scope="module", params=["direct", "parsl"])
def instance(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    require(flux_instance.missing(bindings=True))
    d = tmp_path_factory.mktemp(request.param)
    # Parsl's wrapper unpickles this module's Python apps by name: the jobs (given this environment) import it
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), saved]))
    ex = executor(request.param, d)
    parsl.load(Config(executors=[ex], run_dir=str(d / "runinfo"), retries=1,
                      retry_handler=InfrastructureRetries(retries=1, max_lost_blocks=0)))
    try:
        yield Instance(request.param, d)
    finally:
        parsl.dfk().cleanup()
        parsl.clear()
        ex.provider.cancel(list(ex.provider.resources))  # FluxExecutor's shutdown leaves its block to the caller
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved


@python_app
def divide(a: float, b: float) -> float:
    return a / b


@bash_app
def shell(command: str, stdout: Any = None, stderr: Any = None, walltime: float | None = None,
          outputs: Sequence[File] = (), parsl_resource_specification: dict = {}) -> str:  # noqa: B006 - as Parsl's docs
    return command


@bash_app
def not_a_command() -> str:
    return 42  # type: ignore[return-value]


def test_python_apps_take_parsl_s_path(instance: Instance) -> None:
    assert divide(6, 3).result(timeout=120) == 2
    with pytest.raises(ZeroDivisionError):
        divide(1, 0).result(timeout=120)


def test_bash_app_streams_are_appended_and_its_result_is_zero(instance: Instance) -> None:
    out, err = instance.dir / "s" / "a.out", instance.dir / "s" / "a.err"
    command = "echo out; echo err >&2"
    for _ in range(2):
        assert shell(command, stdout=str(out), stderr=str(err)).result(timeout=120) == 0
    assert out.read_text() == "out\nout\n"
    echo = f"--> executable follows <--\n{command}\n--> end executable <--\n"
    assert err.read_text() == (echo + "err\n") * 2


def test_a_file_as_stdout_is_truncated(instance: Instance) -> None:
    out = instance.dir / "f.out"
    out.write_text("old\n")
    shell("echo new", stdout=File(str(out))).result(timeout=120)
    assert out.read_text() == "new\n"


def test_a_failing_bash_app_raises_bash_exit_failure_with_its_code(instance: Instance) -> None:
    with pytest.raises(BashExitFailure) as failed:
        shell("exit 7").result(timeout=120)
    assert failed.value.exitcode == 7 and failed.value.app_name == "shell"


def test_missing_outputs(instance: Instance) -> None:
    there, missing = File(str(instance.dir / "there")), File(str(instance.dir / "missing"))
    assert shell(f"touch {there.filepath}", outputs=[there]).result(timeout=120) == 0
    with pytest.raises(MissingOutputs) as err:
        shell("true", outputs=[missing]).result(timeout=120)
    assert [f.filepath for f in err.value.outputs] == [missing.filepath]


def test_a_retry_runs_the_command_again(instance: Instance) -> None:
    log, mark = instance.dir / "retry.log", instance.dir / "retry.mark"
    future = shell(f"echo attempt >> {log}; [ -e {mark} ] || {{ touch {mark}; exit 4; }}")
    assert future.result(timeout=120) == 0
    assert log.read_text() == "attempt\nattempt\n" and future.task_record["try_id"] == 1


def test_an_unresolvable_bash_app_fails_as_parsl_says(instance: Instance) -> None:
    with pytest.raises(ValueError, match="Expected a str"):
        not_a_command().result(timeout=120)


def test_walltime_raises_app_timeout(instance: Instance) -> None:
    late = instance.dir / "late"
    started = time.time()
    with pytest.raises(AppTimeout, match="exceeded walltime: 1 seconds"):
        shell(f"sleep 4; touch {late}", walltime=1).result(timeout=120)
    if instance.kind == "direct":  # Flux's duration ends the job; Parsl's stock wrapper leaves it running
        time.sleep(max(0.0, started + 6 - time.time()))
        assert not late.exists()


def test_a_multi_rank_job_spans_the_brokers_with_no_python_in_the_ranks(instance: Instance) -> None:
    out = instance.dir / "ranks.out"
    spec = {"num_tasks": 4, "num_nodes": BROKERS, "cores_per_task": 1}
    line = 'echo "$FLUX_TASK_RANK $(flux getattr rank) $(cat /proc/$PPID/comm)"'
    assert shell(line, stdout=str(out), parsl_resource_specification=spec).result(timeout=120) == 0
    rows = [row.split() for row in out.read_text().splitlines()]
    assert sorted(int(task) for task, _, _ in rows) == [0, 1, 2, 3]
    assert {broker for _, broker, _ in rows} == {str(b) for b in range(BROKERS)}
    parents = {parent for _, _, parent in rows}
    if instance.kind == "direct":
        assert parents == {"flux-shell"}
    else:
        assert all(p.startswith("python") for p in parents), parents


@pytest.mark.parametrize("instance", ["direct"], indirect=True)  # stock: every rank writes the one result file
def test_the_highest_exit_status_over_ranks_fails_the_app(instance: Instance) -> None:
    spec = {"num_tasks": 4, "num_nodes": BROKERS}
    with pytest.raises(BashExitFailure) as failed:
        shell("case $FLUX_TASK_RANK in 1) exit 5;; 2) exit 3;; esac", parsl_resource_specification=spec).result(120)
    assert failed.value.exitcode == 5


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert path.exists(), f"{path} never appeared"


def holding(name: str, count: int, timeout: float = 30) -> list[int]:
    """The `count` processes called name, once they are there (a rank execs into its name after `started`)."""
    deadline = time.time() + timeout
    while len(processes_named(name)) < count and time.time() < deadline:
        time.sleep(0.1)
    found = processes_named(name)
    assert len(found) == count, found
    return found


def deaf_ranks(name: str, started: Path, once: bool = False) -> str:
    """A job whose ranks ignore SIGTERM and hold, each as a process called `name`; once: run again, it exits 3."""
    again = f"if [ -e {started} ]; then exit 3; fi; " if once else ""
    return f"{again}touch {started}; trap '' TERM; exec -a {name} sleep 600"


def test_cancel_before_flux_has_the_job(instance: Instance) -> None:
    """As Parsl's FluxExecutor: a future queued for Flux cancels, and its job never runs."""
    d = instance.dir / "cancel-queued"
    ex = executor(instance.kind, d)
    ex.run_dir = str(d)
    ex.start()
    try:
        queued = ex.submit(shell.wrapped_remote_function, {}, f"touch {d}/never")
        assert queued.cancel() and queued.cancelled()
        assert ex.submit(shell.wrapped_remote_function, {}, "true").result(timeout=120) == 0
        assert not (d / "never").exists()
    finally:
        ex.shutdown()
        ex.provider.cancel(list(ex.provider.resources))


def test_cancel_of_a_running_job(instance: Instance) -> None:
    """Direct: cancel() of a running job ends its Flux job, every rank (even one deaf to SIGTERM), before it
    returns; the future is cancelled and the instance runs the next job. Parsl's: False, the job runs on."""
    d = instance.dir / "cancel-running"
    ex = executor(instance.kind, d)
    ex.run_dir = str(d)
    ex.start()
    name = f"parslmpi-deaf-{instance.kind}-{os.getpid()}"
    spec = {"num_tasks": BROKERS, "num_nodes": BROKERS}
    try:
        running = ex.submit(shell.wrapped_remote_function, spec, deaf_ranks(name, d / "started"))
        wait_for(d / "started")
        ranks = holding(name, BROKERS)
        if instance.kind == "parsl":
            assert not running.cancel() and not running.done()
            for pid in ranks:
                os.kill(pid, 9)
            return
        assert running.cancel()
        assert running.cancelled() and processes_named(name) == []
        assert ex.submit(shell.wrapped_remote_function, spec, "true").result(timeout=60) == 0
    finally:
        ex.shutdown()
        ex.provider.cancel(list(ex.provider.resources))


def test_workflows_cancel_ends_a_running_app_without_a_retry(instance: Instance) -> None:
    """workflows.cancel(AppFuture), where Parsl's AppFuture.cancel() raises NotImplementedError: the try's
    executor future is cancelled (direct: its running job too) and the app fails with CancelledError, not
    retried (the variants' retry handler); Parsl's executor: a running try cannot be cancelled."""
    import concurrent.futures

    import workflows

    name = f"parslmpi-deaf-app-{instance.kind}-{os.getpid()}"
    started = instance.dir / f"{name}.started"
    future = shell(deaf_ranks(name, started, once=True), parsl_resource_specification={"num_tasks": 1})
    wait_for(started)
    ranks = holding(name, 1)
    with pytest.raises(NotImplementedError):
        future.cancel()
    if instance.kind == "parsl":
        assert not workflows.cancel(future)
        for pid in ranks:
            os.kill(pid, 9)
        with pytest.raises(BashExitFailure):  # its retry's (exit 3)
            future.result(timeout=120)
        return
    assert workflows.cancel(future)
    assert processes_named(name) == []
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(timeout=60)
    assert future.task_record["try_id"] == 0  # no retry was launched
