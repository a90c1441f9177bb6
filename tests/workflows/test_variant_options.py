"""A variant's own options (variants/base.py Option): declared in its class, offered by the CLI in its group,
kept in Settings.variant_options, read by the variant, refused in one line elsewhere (issue 30, item 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from workflows import cli, preflight, variants
from workflows.settings import Settings, SettingsError
from workflows.variants.base import Option, Variant

from ..conftest import PROJECT


def parsed(*argv: str) -> Settings:
    args = cli.parser().parse_args(["run", *argv])
    return preflight.settings_from(args, {"n1": 2, "n2": 2}, PROJECT / "runs" / "x")


def test_the_flux_wrapper_is_the_flux_variant_s_option_and_read_by_it():
    flux = variants.get("flux")
    assert [o.flag for o in flux.options] == ["--flux-wrapper"]
    s = parsed("flux", "--flux-wrapper", "parsl", "--no-spack")
    assert s.variant_options == (("flux_wrapper", "parsl"),)
    assert flux.option(s, "flux_wrapper") == "parsl"
    assert flux.option(parsed("flux", "--no-spack"), "flux_wrapper") == "direct"  # its first choice by default
    assert variants.checked(s) is flux


def test_another_variant_s_option_is_refused_in_one_line():
    with pytest.raises(SettingsError, match="^--flux-wrapper is not an option of the mpi variant$"):
        variants.checked(parsed("mpi", "--flux-wrapper", "parsl", "--no-spack"))
    s = Settings(variant="flux", run_dir=PROJECT / "runs" / "x", rank_launcher="flux",
                 variant_options=(("flux_wrapper", "both"),))
    with pytest.raises(SettingsError, match="^--flux-wrapper must be one of direct, parsl, got 'both'$"):
        variants.checked(s)


def test_the_cli_refuses_it_before_anything_is_submitted():
    proc = subprocess.run([sys.executable, "workflows/run.py", "htex", "--flux-wrapper", "parsl", "--no-spack"],
                          capture_output=True, text=True, timeout=60, cwd=PROJECT)
    prog = f"{Path(sys.executable).name} workflows/run.py"  # the command typed (projectdir/cli.py)
    assert (proc.returncode, proc.stderr) == (2, f"{prog}: --flux-wrapper is not an option of the htex variant\n")


def test_a_new_variant_s_option_needs_only_its_class(monkeypatch):
    class Probe(Variant):
        name = "probe"
        summary = "a variant that only declares an option"
        rank_launchers = ("mpirun",)
        options: ClassVar[tuple[Option, ...]] = (Option("--probe-mode", "probe_mode", ("fast", "slow"), "how"),)

    monkeypatch.setitem(variants.REGISTRY, "probe", Probe())
    help_text = cli.parser().format_help() + cli.parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "options of the probe variant" in help_text and "--probe-mode {fast,slow}" in help_text
    s = parsed("probe", "--probe-mode", "slow", "--no-spack")
    assert variants.checked(s).option(s, "probe_mode") == "slow"
    assert parsed("probe", "--no-spack").variant_options == ()
