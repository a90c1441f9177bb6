"""The workflows command line without a cluster: one parser, the design's run.py form, what a run records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflows import cli, monitoring, placement, preflight, report, session, variants, verify
from workflows.outputs import Outcome

from ..conftest import PROJECT

NODES = {"n1": 2, "n2": 2, "n3": 2, "n4": 2}


def settings_of(*argv: str):
    args = cli.parser().parse_args(["run", *argv, "--no-spack"])
    return preflight.settings_from(args, NODES, PROJECT / "runs" / "t")


def finished(s, nodes: int = 2) -> dict:
    """result.json of a run in which every run answered on its nodes."""
    hosts = sorted(NODES)
    runs = []
    for i in range(s.repeats):
        on = hosts[(i * nodes) % 4:(i * nodes) % 4 + nodes]
        ranks = tuple(placement.Rank(k, nodes * 2, h, c) for k, (h, c) in enumerate((h, c) for h in on for c in (0, 1)))
        runs.append(placement.Run(i, f"outputs/run-{i}.out", ranks, 10.0 + i, 11.0 + i))
    outcome = Outcome(runs, {}, [], [])
    label = variants.label(s.variant, s.rank_launcher)
    return report.result(s, label, runs, verify.problems(s, outcome, NODES), 1.0,
                         report.facts(outcome, monitoring.disabled(), NODES, s.run_dir))


def test_the_flux_variant_records_the_rank_launcher_that_ran():
    data = finished(settings_of("flux"))
    assert data["parameters"]["rank_launcher"] == "flux" and data["label"] == "flux"
    assert data["verified"], data["problems"]


@pytest.mark.parametrize("argv, label", [(["mpi", "--launcher", "flux"], "mpi/flux"), (["mpi"], "mpi"),
                                         (["htex"], "htex")])
def test_the_placement_picture_and_summary_say_what_ran(argv, label):
    data = finished(settings_of(*argv))
    assert data["label"] == label
    assert report.plot_title(data, data["runs"], 4) == f"{label}: 4 MPI runs on 4 of 4 nodes (verified)"
    assert report.summary(data).startswith(f"{label}: 4 runs")


def test_one_parser_has_the_three_commands_and_run_takes_every_option():
    p = cli.parser()  # its prog is the command typed: tests/test_cli_shape.py
    assert p.parse_args(["clean", "--dry-run"]).dry_run
    assert p.parse_args(["visualize", "runs/x", "--port", "8000"]).port == 8000
    args = p.parse_args(["run", "mpi", "--launcher", "flux", "--repeats", "8"])
    assert (args.command, args.variant, args.launcher, args.repeats) == ("run", "mpi", "flux", 8)
    assert p.parse_args(["run", "mpi"]).launcher is None  # the variant's first, named in the settings


def test_settings_never_import_the_variants():
    code = "import sys, workflows.settings; sys.exit('workflows.variants' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT).returncode == 0


RUN_PY = f"{Path(sys.executable).name} {PROJECT / 'workflows' / 'run.py'}"  # as typed (projectdir/cli.py)


@pytest.mark.parametrize("argv, out", [(["--help"], f"usage: {RUN_PY} [-h] [--repeats REPEATS]"),
                                       (["clean", "--help"], f"usage: {RUN_PY} clean [-h] [--dry-run]"),
                                       (["visualize", "--help"], f"usage: {RUN_PY} visualize [-h]")])
def test_run_py_works_from_a_python_where_the_project_is_not_installed(tmp_path, argv, out):
    # -I -S: no site-packages (so no editable install of the project), no PYTHONPATH, not run from the checkout
    proc = subprocess.run([sys.executable, "-I", "-S", str(PROJECT / "workflows" / "run.py"), *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith(out), proc.stdout + proc.stderr


def test_run_py_and_the_package_cli_refuse_alike_each_in_its_own_name(tmp_path):
    env = {**os.environ, "SLURM_CONF": "/nonexistent/slurm.conf"}
    as_run_py = subprocess.run([sys.executable, str(PROJECT / "workflows" / "run.py"), "htex", "--launcher", "flux"],
                            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    package = subprocess.run([sys.executable, "-m", "workflows", "run", "htex", "--launcher", "flux"],
                             cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    why = "--launcher flux: the htex variant launches with mpirun only (flux is for: mpi, flux)\n"
    assert (as_run_py.returncode, as_run_py.stderr) == (2, f"{RUN_PY}: {why}")
    assert (package.returncode, package.stderr) == (2, f"{Path(sys.executable).name} -m workflows: {why}")


def test_clean_of_the_package_cli_keeps_what_is_not_a_run(tmp_path):
    (tmp_path / "runs" / "mpi-1").mkdir(parents=True)
    (tmp_path / "runs" / "mpi-1" / session.MARKER).touch()
    (tmp_path / "runs" / "notes").mkdir()
    proc = subprocess.run([sys.executable, "-m", "workflows", "clean"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # the installed package (scripts/setup.sh: pip install -e)
    assert proc.stdout == f"removing {Path('runs') / 'mpi-1'}\n"
    assert (tmp_path / "runs" / "notes").is_dir() and not (tmp_path / "runs" / "mpi-1").exists()
