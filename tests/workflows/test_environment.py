"""The load order: miniconda3 last, or a one-line refusal saying why."""

import subprocess
import sys

import pytest

from workflows import environment


def test_default_order_renders_spack_loads_with_conda_last():
    assert environment.render(environment.DEFAULT_LOADS).splitlines() == [
        "spack load openmpi", "spack load flux-sched", "spack load miniconda3"]


def test_anything_after_miniconda3_is_refused():
    with pytest.raises(environment.LoadOrderError, match="must be loaded last.*flux-sched comes after"):
        environment.check_order(["openmpi", "miniconda3@24.7.1", "flux-sched"])


def test_without_spack_only_the_venv_is_activated():
    assert environment.shell_lines(["openmpi", "miniconda3"], spack=False, venv="/v") == [". /v/bin/activate"]


def test_cli_refuses_a_bad_order_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "workflows.environment", "--load", "miniconda3", "--load", "openmpi"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "miniconda3" in proc.stderr and "conda's Python" in proc.stderr
