"""guard: the private Parsl names the direct path uses hold in the pinned Parsl; a change sends all to stock."""

from __future__ import annotations

import collections
import weakref
from collections.abc import Iterator
from pathlib import Path

import parsl.executors.flux.executor as stock
import pytest
from parsl.app.app import bash_app

from workflows.fluxexec import DirectFluxExecutor, guard
from workflows.fluxexec.executor import _DirectJobInfo


@bash_app
def hello(stderr: str | None = None) -> str:
    return "echo hello"


@pytest.fixture
def executors() -> Iterator[list[DirectFluxExecutor]]:
    """Executors never started: Parsl's finalizer would join their thread at exit (and fail), so drop it."""
    made: list[DirectFluxExecutor] = []
    yield made
    for finalizer in list(weakref.finalize._registry):  # type: ignore[attr-defined]
        if any(finalizer.peek() and finalizer.peek()[0] is ex for ex in made):
            finalizer.detach()


def executor(tmp_path: Path, made: list[DirectFluxExecutor]) -> DirectFluxExecutor:
    made.append(DirectFluxExecutor(working_dir=str(tmp_path / "flux"), flux_path="/bin/true"))
    return made[-1]


def test_the_pinned_parsl_has_every_name_the_direct_path_uses() -> None:
    assert guard.problems() == []
    assert stock._FluxJobInfo._fields == guard.JOBINFO_FIELDS


def test_a_bash_app_is_queued_as_its_command_with_no_pickle(tmp_path: Path, executors: list) -> None:
    ex = executor(tmp_path, executors)
    assert ex.direct
    (tmp_path / "flux").mkdir()
    ex.submit(hello.wrapped_remote_function, {"num_tasks": 2}, stderr=str(tmp_path / "h.err"))
    job = ex._submission_queue.get_nowait()
    assert isinstance(job, _DirectJobInfo) and job.bash.command == "echo hello"
    assert job.resource_spec == {"num_tasks": 2}
    assert list((tmp_path / "flux").iterdir()) == []
    assert (tmp_path / "h.err").read_text().startswith("--> executable follows <--\necho hello\n")


@pytest.mark.parametrize("change", ["jobinfo", "single", "future"])
def test_a_changed_parsl_is_said_in_one_line_and_takes_the_stock_path(
        change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        executors: list) -> None:
    if change == "jobinfo":
        monkeypatch.setattr(stock, "_FluxJobInfo", collections.namedtuple("_FluxJobInfo", ("future", "spec")))
    elif change == "single":
        monkeypatch.delattr(stock, "_submit_single_job")
    else:
        monkeypatch.setattr(stock, "FluxFutureWrapper", type("Wrapper", (), {}))
    ex = executor(tmp_path, executors)
    err = capsys.readouterr().err
    assert not ex.direct and len(err.strip().splitlines()) == 1 and "stock path" in err
    if change != "single":
        return  # Parsl's own submit() needs its own _FluxJobInfo and FluxFutureWrapper
    (tmp_path / "flux").mkdir()
    ex.submit(hello.wrapped_remote_function, {})
    assert not isinstance(ex._submission_queue.get_nowait(), _DirectJobInfo)
    assert [p.name for p in (tmp_path / "flux").iterdir()] == ["0_in.pkl"]
