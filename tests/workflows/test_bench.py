"""bench: which rows it runs and the command of each (pure, no cluster)."""

from __future__ import annotations

from pathlib import Path

from workflows import bench


def test_the_stock_wrapper_row_follows_flux_and_runs_flux_with_parsl_s_wrapper() -> None:
    assert bench.with_option_rows(["mpi", "flux", "mpi/flux"]) == ["mpi", "flux", "flux/parsl-wrapper", "mpi/flux"]
    assert bench.with_option_rows(["mpi"]) == ["mpi"]
    cmd = bench.command("flux/parsl-wrapper", 16, Path("/r/d"), Path("/r/b"), 4)
    assert cmd[2:5] == ["flux", "--flux-wrapper", "parsl"] and "--repeats" in cmd and "16" in cmd


def test_every_row_is_a_choice_of_the_parser_and_monitoring_says_why_not() -> None:
    args = bench.parser().parse_args(["--variants", "flux/parsl-wrapper", "mpi/flux", "--k", "16"])
    assert args.variants == ["flux/parsl-wrapper", "mpi/flux"]
    names, skipped = bench.monitored_labels(["flux/parsl-wrapper"])
    assert names == ["flux/parsl-wrapper"] and skipped[0].startswith("flux/parsl-wrapper: no flux/parsl-wrapper+mon")


def test_summary_is_overhead_per_run_over_the_baseline_of_the_same_k() -> None:
    def s(makespan: float) -> dict:
        return {"makespan": makespan, "first": 1.0, "verified": True}

    samples = {("baseline", 10): [s(5.0), s(7.0), s(6.0)], ("flux", 10): [s(8.0), s(7.0), s(9.0)]}
    rows = bench.summarize(["baseline", "flux"], [10], samples)
    assert rows[1]["overhead_ms"] == 200.0 and rows[1]["ratio"] == 8.0 / 6.0 and rows[1]["verified"]
