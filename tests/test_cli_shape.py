"""One shape for every console script (projectdir/cli.py), walked over pyproject.toml's [project.scripts]: the
name shown is the command typed, a bad argument is one line and exit 2, Ctrl-C is one line and exit 130, and
each package's errors map to 1 (failed) or 2 (refused) through its one base class."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

import projectdir
from bundle.errors import BundleError
from localcluster import cluster, procs, slots, spec
from localcluster.errors import LocalClusterError
from projectdir import cli
from spackenv import bench as spack_bench
from spackenv import check, lock
from spackenv.errors import SpackenvError
from upstream import pins, safetar, sources, steps
from upstream.errors import UpstreamError
from workflows import command, environment, monitoring, settings, slurm, stall
from workflows.errors import WorkflowsError

from .conftest import PROJECT

SCRIPTS = sorted(tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"])
BIN = Path(sys.executable).parent  # the set-up's .venv/bin, where pip put the console scripts
PYTHON = Path(sys.executable).name


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != cli.PROG_ENV}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, **kw)  # type: ignore[call-overload]


def test_every_console_script_is_walked_and_installed() -> None:
    assert len(SCRIPTS) >= 13 and "parsl-mpi-workflows" in SCRIPTS and "parsl-mpi-upstream" in SCRIPTS
    assert [name for name in SCRIPTS if not (BIN / name).is_file()] == []


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_names_the_console_script(name: str) -> None:
    proc = run([str(BIN / name), "--help"])
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: {name} "), proc.stdout + proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_bad_argument_is_one_line_naming_it_and_exit_2(name: str) -> None:
    proc = run([str(BIN / name), "--no-such-option"])
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr == f"{name}: unrecognized arguments: --no-such-option\n"


def test_python_m_and_run_py_are_named_as_typed() -> None:
    module = run([sys.executable, "-m", "bundle", "--help"], cwd=PROJECT)
    assert module.stdout.startswith(f"usage: {PYTHON} -m bundle "), module.stdout + module.stderr
    run_py = run([sys.executable, "workflows/run.py", "--bad"], cwd=PROJECT)
    assert (run_py.returncode, run_py.stderr) == (2, f"{PYTHON} workflows/run.py: unrecognized arguments: --bad\n")


def test_a_thin_script_is_named_as_typed() -> None:
    script = "scripts/bench-ship.sh"
    helped = run([script, "--help"], cwd=PROJECT)
    assert helped.returncode == 0 and helped.stdout.startswith(f"usage: {script} "), helped.stdout + helped.stderr
    bad = run([script, "--hots", "n1"], cwd=PROJECT)
    assert (bad.returncode, bad.stderr) == (2, f"{script}: unrecognized arguments: --hots n1\n")


def test_the_typed_name_is_read_once_so_the_commands_it_starts_name_themselves(monkeypatch) -> None:
    monkeypatch.setenv(cli.PROG_ENV, "scripts/x.sh")
    assert cli.prog() == "scripts/x.sh" and cli.PROG_ENV not in os.environ
    assert cli.prog() != "scripts/x.sh"


def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path) -> None:
    """parsl-mpi-spack-lock waits on a FIFO nobody writes to; SIGINT then, as Ctrl-C sends it."""
    fifo = tmp_path / "lock.fifo"
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if k != cli.PROG_ENV}
    proc = subprocess.Popen([str(BIN / "parsl-mpi-spack-lock"), "same", str(fifo), str(fifo)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer, deadline = None, time.monotonic() + 60
    while writer is None and proc.poll() is None and time.monotonic() < deadline:
        try:  # succeeds once the command has the FIFO open for reading: it is in its main, waiting
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.05)
    try:
        assert writer is not None, proc.communicate(timeout=5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        proc.kill()
    assert (proc.returncode, out, err) == (130, "", "parsl-mpi-spack-lock: interrupted\n")


BASES = {WorkflowsError: [monitoring.MonitoringError, settings.SettingsError, slurm.SlurmError,
                          environment.LoadOrderError, command.CommandError, stall.Stalled],
         UpstreamError: [pins.PinError, sources.SourceError, steps.StepFailed, safetar.UnsafeMember],
         SpackenvError: [check.CheckError, check.SpackNotFound, spack_bench.BenchError, lock.Unreadable],
         LocalClusterError: [procs.CommandError, slots.SlotError, cluster.ClusterError, spec.SpecError],
         projectdir.ProjectdirError: [projectdir.NotFound]}
REFUSED = {monitoring.MonitoringError, settings.SettingsError, environment.LoadOrderError, command.CommandError,
           pins.PinError, safetar.UnsafeMember, check.SpackNotFound, lock.Unreadable, spec.SpecError,
           projectdir.NotFound}


@pytest.mark.parametrize("base", BASES, ids=lambda b: b.__name__)
def test_each_package_s_errors_have_its_one_base_and_keep_their_own(base: type[cli.Error]) -> None:
    assert issubclass(base, cli.Error)
    for error in BASES[base]:
        assert issubclass(error, base), error
        assert [b for b in error.__mro__ if b.__module__ == "builtins" and b not in (Exception, BaseException, object)]
        assert error.refused == (error in REFUSED), error


def body_raising(err: BaseException):
    def body(prog: str) -> int:
        raise err
    return body


def test_the_class_decides_the_exit_status_and_the_line(capsys, monkeypatch) -> None:
    monkeypatch.setenv(cli.PROG_ENV, "prog")
    assert cli.run(body_raising(settings.SettingsError("--repeats must be at least 1"))) == cli.REFUSED
    assert capsys.readouterr().err == "prog: --repeats must be at least 1\n"
    monkeypatch.setenv(cli.PROG_ENV, "prog")
    assert cli.run(body_raising(stall.Stalled("no block could run"))) == cli.FAILED
    assert capsys.readouterr().err == "prog: no block could run\n"
    monkeypatch.setenv(cli.PROG_ENV, "prog")
    assert cli.run(body_raising(cluster.ClusterError("did not come up\nn1.log: boom"))) == cli.FAILED
    assert capsys.readouterr().err == "n1.log: boom\nprog: did not come up\n"  # the reason is the last line
    monkeypatch.setenv(cli.PROG_ENV, "prog")
    assert cli.run(body_raising(BundleError("bad \udcff name\nx")), BundleError) == cli.FAILED
    assert capsys.readouterr().err == "prog: bad \\udcff name x\n"
    monkeypatch.setenv(cli.PROG_ENV, "prog")
    assert cli.run(body_raising(KeyboardInterrupt())) == cli.INTERRUPTED
    assert capsys.readouterr().err == "prog: interrupted\n"
    with pytest.raises(ValueError):  # not a project error: a bug, shown as one
        cli.run(body_raising(ValueError("bug")))


def test_an_unknown_option_is_named_before_a_missing_argument_but_an_abbreviation_is_not_unknown(capsys) -> None:
    p = cli.Parser(prog="prog")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("root")
    for words, said in ((["--quiet", "--nope"], "unrecognized arguments: --nope"),
                        (["--qui"], "the following arguments are required: root")):
        with pytest.raises(SystemExit) as exited:
            p.parse_args(words)
        assert exited.value.code == 2 and capsys.readouterr().err == f"prog: {said}\n", words
    assert p.parse_args(["r", "--qui"]) == argparse.Namespace(quiet=True, root="r")
