"""Each launcher's command line for one MPI run (pure, no cluster)."""

import pytest

from workflows.launchers import RANK_LAUNCHERS, compiler


def test_openmpi_line_places_ranks_per_node_and_binds():
    assert RANK_LAUNCHERS["mpirun"].command("openmpi", ["n1", "n2"], 2, ["./hello"]) == [
        "mpirun", "-np", "4", "--host", "n1,n2", "--map-by", "ppr:2:node", "--bind-to", "core",
        "--oversubscribe", "./hello"]


def test_mpich_line_uses_hydra_flags():
    cmd = RANK_LAUNCHERS["mpirun"].command("mpich", ["n3", "n4"], 2, ["./hello"])
    assert cmd[0].startswith("mpiexec") and cmd[1:7] == ["-n", "4", "-ppn", "2", "-hosts", "n3,n4"]
    assert compiler("mpich").startswith("mpicc") and compiler("openmpi") == "mpicc"


def test_unknown_flavour_is_refused():
    with pytest.raises(ValueError, match="unknown MPI flavour"):
        RANK_LAUNCHERS["mpirun"].command("intel", ["n1"], 2, ["./hello"])


def test_flux_asks_flux_for_counts_whole_nodes_and_one_core_per_rank_and_ignores_the_hosts():
    cmd = RANK_LAUNCHERS["flux"].command("openmpi", ["n1", "n2"], 2, ["./hello", "x y"])
    assert cmd[:11] == ["flux", "run", "-N", "2", "-n", "4", "--exclusive", "--cores-per-task=1", "-o",
                        "cpu-affinity=per-task", "sh"]
    assert cmd[11] == "-c" and "./hello 'x y'; rc=$?" in cmd[12]
    assert cmd[12].startswith('echo "# start $(date +%s.%N) ${FLUX_JOB_ID:-$(hostname)-$$}"')
    assert RANK_LAUNCHERS["flux"].under_flux and not RANK_LAUNCHERS["mpirun"].under_flux


def test_flux_ranks_end_their_program_at_the_time_limit_and_flux_the_job_after_and_mpirun_leaves_it_to_timeout():
    """Each rank's `timeout` ends its program (deaf ranks: SIGKILL 5 s on); Flux's own limit is the backstop;
    mpirun's run ends by the `timeout` around the launch."""
    cmd = RANK_LAUNCHERS["flux"].command("openmpi", ["n1"], 2, ["./hello"], time_limit=7.2)
    assert cmd[cmd.index("-t") + 1] == "23s" and cmd.index("-t") < cmd.index("sh")
    assert "; timeout --kill-after=5 7.2 ./hello; rc=$?" in cmd[-1]
    assert "-t" not in RANK_LAUNCHERS["flux"].command("openmpi", ["n1"], 2, ["./hello"])
    assert RANK_LAUNCHERS["mpirun"].command("openmpi", ["n1"], 2, ["./hello"], time_limit=7.2) == \
        RANK_LAUNCHERS["mpirun"].command("openmpi", ["n1"], 2, ["./hello"])
