"""bashjob: a bash app call resolved on the submit side as Parsl's remote side would (no Flux needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from parsl.app.app import bash_app, python_app
from parsl.app.errors import AppTimeout, BashExitFailure, MissingOutputs
from parsl.data_provider.files import File

from workflows.flux import parsl_seam
from workflows.flux.bashjob import BashJob, Stream, bash_job, open_streams, outcome

PARSL, _ = parsl_seam.internals()
assert PARSL is not None, "the pinned Parsl has every private name the direct path uses (test_parsl_seam.py)"


@bash_app
def echo(word: str, stdout: object = None, stderr: object = None, walltime: float | None = None) -> str:
    return f"echo {word}; echo {word}-err >&2"


@bash_app
def not_a_string() -> str:
    return 5  # type: ignore[return-value]


@python_app
def add(a: int, b: int) -> int:
    return a + b


def test_user_function_recognises_bash_apps_only() -> None:
    assert PARSL.user_function(echo.wrapped_remote_function) is echo.func
    assert PARSL.user_function(add.func) is None
    assert PARSL.user_function(lambda: "x") is None


def test_bash_job_composes_the_command_and_streams(tmp_path: Path) -> None:
    out, err = tmp_path / "o" / "x.out", File(str(tmp_path / "x.err"))
    job = bash_job(PARSL, echo.wrapped_remote_function, ("hi",), {"stdout": str(out), "stderr": err, "walltime": 3})
    assert job == BashJob("echo", "echo hi; echo hi-err >&2", Stream(str(out), "a+"), Stream(str(err), "w"), 3, ())
    job = bash_job(PARSL, echo.wrapped_remote_function, ("hi",), {"stdout": (str(out), "w")})
    assert job is not None and job.stdout == Stream(str(out), "w") and job.stderr is None


@pytest.mark.parametrize("kwargs", [{"walltime": 0}, {"walltime": "3"}, {"walltime": True}, {"stdout": 5},
                                    {"outputs": ["not-a-file"]}, {"stdout": ("x.out", "w", 1)}])
def test_what_the_stock_path_must_raise_for_is_not_resolved(kwargs: dict) -> None:
    assert bash_job(PARSL, echo.wrapped_remote_function, ("hi",), kwargs) is None


def test_a_command_that_is_not_a_string_or_fails_to_format_is_left_to_parsl() -> None:
    assert bash_job(PARSL, not_a_string.wrapped_remote_function, (), {}) is None
    assert bash_job(PARSL, echo.wrapped_remote_function, (), {}) is None  # a missing argument: TypeError remotely


def test_script_appends_in_every_rank_and_keeps_the_exit_status(tmp_path: Path) -> None:
    out, err = tmp_path / "a.out", tmp_path / "a.err"
    job = BashJob("a", "echo one; echo two >&2; exit 3", Stream(str(out), "a+"), Stream(str(err), "a+"), None, ())
    assert open_streams(job)
    for _ in range(2):
        assert subprocess.run(["/bin/bash", "-c", job.script()]).returncode == 3
    assert out.read_text() == "one\none\n"
    assert err.read_text() == "--> executable follows <--\n" + job.command + "\n--> end executable <--\ntwo\ntwo\n"


def test_a_file_stream_is_truncated_once(tmp_path: Path) -> None:
    out = tmp_path / "f.out"
    out.write_text("old\n")
    job = BashJob("a", "echo new", Stream(str(out), "w"), None, None, ())
    assert open_streams(job) and out.read_text() == ""
    assert "2>>" not in job.script()


def test_open_streams_fails_where_parsl_would(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert not open_streams(BashJob("a", "true", Stream(str(tmp_path / "file" / "x"), "a+"), None, None, ()))
    # a bad mode is a ValueError from open(), which Parsl's remote side turns into BadStdStreamFile
    assert not open_streams(BashJob("a", "true", Stream(str(tmp_path / "t.out"), "badmode"), None, None, ()))


def test_a_runtime_over_the_walltime_is_app_timeout_whatever_the_exit_status() -> None:
    job = BashJob("a", "", None, None, 0.01, ())
    for returncode in (0, 3):
        with pytest.raises(AppTimeout, match="exceeded walltime: 0.01 seconds"):
            outcome(job, returncode, runtime=0.05)
    assert outcome(BashJob("a", "", None, None, 0.2, ()), 0, runtime=0.05) == 0
    assert outcome(job, 0, runtime=None) == 0  # no start event (the job never ran): Flux's own outcome stands


def test_outcome_maps_exit_status_and_outputs_to_parsl_errors(tmp_path: Path) -> None:
    present, absent = File(str(tmp_path / "p")), File(str(tmp_path / "q"))
    Path(present.filepath).write_text("")
    assert outcome(BashJob("a", "", None, None, None, (present,)), 0) == 0
    with pytest.raises(BashExitFailure) as failed:
        outcome(BashJob("a", "", None, None, None, ()), 3)
    assert failed.value.exitcode == 3 and failed.value.app_name == "a"
    with pytest.raises(MissingOutputs) as missing:
        outcome(BashJob("a", "", None, None, None, (present, absent)), 0)
    assert missing.value.outputs == [absent]
