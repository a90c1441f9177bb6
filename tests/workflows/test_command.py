"""The user's own MPI program without a cluster: its words, the rank wrapper (run for real by sh), the
parse of where each rank ran, the record and summary of its runs, and a cheap `import workflows`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflows import cli, command, monitoring, outputs, preflight, report, settings, submission, variants, verify
from workflows.outputs import Outcome

from ..conftest import PROJECT

NODES = {"n1": 2, "n2": 2, "n3": 2, "n4": 2}


def test_the_command_is_split_as_a_shell_would_and_bad_text_is_one_line():
    assert command.argv("./app -n 'two words'") == ("./app", "-n", "two words")
    with pytest.raises(command.CommandError, match="empty"):
        command.argv("  ")
    with pytest.raises(command.CommandError, match="No closing quotation"):
        command.argv("./app 'x")


def test_a_program_given_as_a_path_must_be_there(tmp_path):
    (tmp_path / "app").write_text("")
    assert settings.missing_program(["./app"], tmp_path) is None
    assert settings.missing_program(["mpi_app_on_the_nodes_path"], tmp_path) is None
    assert "./gone is not a file" in settings.missing_program(["./gone"], tmp_path)


def test_the_wrapper_says_where_the_rank_runs_then_becomes_the_program(tmp_path):
    wrapper = submission.write_wrapper(tmp_path / "w.sh", ["sh", "-c", 'echo "args: $0 $1"; exit 7', "one", "two"],
                                    tmp_path)
    env = {**os.environ, "OMPI_COMM_WORLD_RANK": "3"}
    proc = subprocess.run(["taskset", "-c", "0", str(wrapper)], env=env, capture_output=True, text=True, cwd="/")
    assert proc.returncode == 7  # the program's own exit status
    where, said = proc.stdout.splitlines()
    m = outputs.WHERE.match(where)
    assert m and (m[1], m[3]) == ("3", "0") and m[2] == os.uname().nodename
    assert said == "args: one two"


def test_the_wrapper_runs_the_program_where_the_run_was_started(tmp_path):
    wrapper = submission.write_wrapper(tmp_path / "w.sh", ["pwd"], tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_RANK")}
    out = subprocess.run([str(wrapper)], capture_output=True, text=True, env=env, cwd="/").stdout.splitlines()
    assert out[0].startswith("# rank ? ") and out[1] == str(tmp_path)


def test_cpu_lists_in_the_kernels_format():
    assert outputs.cpu_list("0-2,5") == (0, 1, 2, 5) and outputs.cpu_list("1") == (1,)
    assert report.cpu_ranges([5, 0, 1, 2]) == "0-2,5" and report.cpu_ranges([1, 3]) == "1,3"


def test_the_last_attempt_of_a_retried_run_is_the_one_kept():
    text = ("# start 1.0 n1-10\n# rank 0 n1 0\n# rank 1 n2 0\n# end 2.0 n1-10\n"
            "# start 3.0 n3-11\n# rank 1 n4 0-1\nsome output\n# rank 0 n3 1\n# end 5.0 n3-11\n")
    r = outputs.parse_command(2, "outputs/command-2.out", "outputs/command-2.err", text, 0)
    assert [(p.rank, p.host, p.cpus) for p in r.places] == [(0, "n3", (1,)), (1, "n4", (0, 1))]
    assert (r.start, r.end, r.nodes, r.failed_attempts) == (3.0, 5.0, ["n3", "n4"], (("n1", "n2"),))


def finished(exit_statuses: list[int | None], errors: dict[int, str], *extra: str) -> dict:
    args = cli.parser().parse_args(["run", "htex", "--no-spack", "--repeats", str(len(exit_statuses)),
                                    "--command", "./app x", *extra])
    s = preflight.settings_from(args, NODES, PROJECT / "runs" / "t")
    runs = [outputs.parse_command(i, f"outputs/command-{i}.out", f"outputs/command-{i}.err",
                          f"# start {i}.0 h-1\n# rank 0 n{i + 1} 0\n# rank 1 n{i + 1} 1\n# end {i}.5 h-1\n", status)
            for i, status in enumerate(exit_statuses)]
    outcome = Outcome([], {}, [], [], runs, errors)
    return report.result(s, variants.label(s.variant, s.rank_launcher), [], verify.problems(s, outcome, NODES), 1.0,
                         report.facts(outcome, monitoring.disabled(), NODES, s.run_dir), commands=runs)


def test_a_command_run_records_nodes_cores_exit_status_and_outputs():
    data = finished([0, 0], {})
    assert data["verified"] and data["parameters"]["command"] == ("./app", "x") and data["probe_runs"] == []
    r = data["runs"][1]
    assert (r["nodes"], r["cores"], r["exit_status"]) == (["n2"], {"n2": [0, 1]}, 0)
    assert (r["output"], r["errors"]) == ("outputs/command-1.out", "outputs/command-1.err")
    text = report.summary(data)
    assert text.startswith("htex: 2 runs of ./app x") and text.endswith("every run exited 0")
    assert "n2:0-1" in text and "outputs/command-1.out outputs/command-1.err" in text
    assert report.plot_title(data, data["runs"], 4) == "htex: 2 MPI runs on 2 of 4 nodes (every run exited 0)"


def test_a_failed_command_run_is_a_problem_named_with_its_output():
    data = finished([0, 3], {1: "run 1 exited 3 (see outputs/command-1.err)"})
    assert not data["verified"] and data["problems"] == ["run 1 exited 3 (see outputs/command-1.err)"]
    assert data["failed_runs"] == [1] and "NOT every run exited 0" in report.summary(data)


def test_with_the_probe_its_problems_come_first_and_say_so():
    data = finished([None], {0: "run 0 not started: the probe (the hello world) failed"}, "--probe")
    assert data["problems"][0].startswith("probe: expected runs 0..0")  # the probe's hello world never answered
    assert data["problems"][-1] == "run 0 not started: the probe (the hello world) failed"


def test_import_workflows_is_cheap_and_the_api_is_there_on_first_use():
    code = ("import sys, workflows, workflows.environment; assert 'parsl' not in sys.modules, 'parsl loaded'; "
            "from workflows import config, mpi_run, submit; assert 'parsl' in sys.modules; "
            "print(sorted(workflows.__all__) == sorted(workflows.PUBLIC))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT)
    assert proc.stdout.strip() == "True", proc.stderr
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        import workflows

        _ = workflows.nothing


def test_the_api_refuses_an_unknown_variant_before_slurm_is_asked():
    import workflows

    with pytest.raises(workflows.SettingsError, match="unknown variant 'dask'"):
        workflows.settings_for("dask", run_dir=Path("runs/x"))
