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

from ...needs import require

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
    parsl.load(Config(executors=[ex], run_dir=str(d / "runinfo"), retries=1))
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


def test_cancel_before_flux_has_the_job_and_not_after(instance: Instance) -> None:
    """As Parsl's FluxExecutor: a future cancels while queued for Flux, not once Flux runs the job."""
    d = instance.dir / "cancel"
    ex = executor(instance.kind, d)
    ex.run_dir = str(d)
    ex.start()
    try:
        queued = ex.submit(shell.wrapped_remote_function, {}, f"touch {d}/never")
        assert queued.cancel() and queued.cancelled()
        running = ex.submit(shell.wrapped_remote_function, {}, f"touch {d}/started; sleep 2")
        deadline = time.time() + 120
        while not (d / "started").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert not running.cancel()
        assert running.result(timeout=120) == 0
        assert not (d / "never").exists()
    finally:
        ex.shutdown()
        ex.provider.cancel(list(ex.provider.resources))
