"""The loss benchmark's pure parts: its command lines, what it reads off squeue and the outputs, its report."""

from __future__ import annotations

from pathlib import Path

from workflows import bench_loss


def test_htex_gets_its_retry_and_the_others_none() -> None:
    src, d = Path("/w/hold.c"), Path("/w/runs/x")
    htex = bench_loss.command("htex", d, src, python="py")
    assert htex[:3] == ["py", str(bench_loss.RUN), "htex"] and htex[htex.index("--retries") + 1] == "1"
    flux = bench_loss.command("mpi/flux", d, src, python="py")
    assert flux[2:5] == ["mpi", "--launcher", "flux"] and flux[flux.index("--retries") + 1] == "0"
    assert flux[flux.index("--repeats") + 1] == "6" and flux[flux.index("--source") + 1] == str(src)


def test_the_holding_program_sleeps_before_finalize() -> None:
    text = bench_loss.holding_program(bench_loss.HELLO.read_text(), 8)
    assert "#include <unistd.h>" in text and text.index("sleep(8);") < text.index("MPI_Finalize();")


def test_the_first_running_block_and_its_first_node() -> None:
    squeue = "7 n3 other-job\n8 n1 parslmpi-abc\n9 n4 parslmpi-abc\n"
    assert bench_loss.first_block(squeue) == ("8", "n1")
    assert bench_loss.first_block(squeue, frozenset({"8"})) == ("9", "n4")
    assert bench_loss.first_block("7 n3 other-job\n") is None


def test_a_run_holds_on_a_host_until_its_end_line() -> None:
    answered = "Hello world from processor n1, rank 0 out of 4\nHello world from processor n2, rank 2 out of 4\n"
    assert bench_loss.holds_on(answered, "n1") and not bench_loss.holds_on(answered, "n5")
    assert not bench_loss.holds_on(answered + "# end 1700000000.5\n", "n1")
    assert bench_loss.holds_on(answered + "# end 1.0\n" + answered, "n1")  # its retry holds there again


def test_kill_to_last_verified_is_the_last_end_stamp_after_the_kill() -> None:
    data = {"verified": True, "runs": [{"end": 100.0 + i} for i in range(6)], "lost_blocks": [{}], "problems": []}
    got = bench_loss.sample_of(data, killed_at=95.0, wall=30.0, returncode=0)
    assert got == {"kill_to_verified": 10.0, "wall": 30.0, "verified": True, "lost_blocks": 1, "problems": []}
    short = bench_loss.sample_of({**data, "runs": data["runs"][:5]}, 95.0, 30.0, 0)
    assert not short["verified"] and not bench_loss.sample_of(data, 95.0, 30.0, 1)["verified"]


def test_the_report_gives_each_variant_over_htex() -> None:
    one = {"wall": 40.0, "verified": True, "lost_blocks": 1, "problems": []}
    rows = bench_loss.summarize({"htex": [{**one, "kill_to_verified": 20.0}, {**one, "kill_to_verified": 30.0}],
                                 "mpi": [{**one, "kill_to_verified": 50.0, "verified": False}]})
    assert [(r["variant"], r["kill_to_verified"], r["ratio"], r["verified"]) for r in rows] == [
        ("htex", 25.0, 1.0, True), ("mpi", 50.0, 2.0, False)]
    lines = bench_loss.table(rows).splitlines()
    assert lines[0].split()[:2] == ["variant", "kill->last"] and lines[2].split() == ["mpi", "50.0", "40.0", "2.00",
                                                                                     "NO", "1"]
