"""Reading Slurm's answers and telling a stalled workflow from a busy one (pure, no cluster)."""

from workflows import slurm, stall
from workflows.slurm import Block

USABLE = {"n1": 2, "n2": 2, "n3": 2, "n4": 2}


def test_squeue_lines_of_this_run_only_with_state_batch_host_and_nodes():
    text = "7 R n1 4 parslmpi-a\n8 PD n/a 2 parslmpi-a\n9 R n3 4 parslmpi-b\n10 CD n2 4 parslmpi-a\nbad line\n"
    assert slurm.parse_squeue(text, "parslmpi-a") == [Block("7", "R", "n1", 4), Block("8", "PD", "n/a", 2)]


def test_a_running_block_is_progress_and_a_pending_one_on_enough_nodes_is_a_busy_cluster():
    assert stall.stall_reason([Block("7", "R", "n1", 4)], USABLE, 4) is None
    assert stall.stall_reason([Block("8", "PD", "n/a", 4)], USABLE, 4) is None


def test_nothing_queued_or_too_few_usable_nodes_stalls():
    assert "no block of this run is queued or running" in stall.stall_reason([], USABLE, 2)
    three = {k: v for k, v in USABLE.items() if k != "n4"}
    assert "needs 4 nodes but only 3" in stall.stall_reason([Block("8", "PD", "n/a", 4)], three, 4)


def test_a_pending_block_that_fits_the_usable_nodes_is_not_a_stall_whatever_the_first_block_needed():
    three = {k: v for k, v in USABLE.items() if k != "n4"}
    assert stall.stall_reason([Block("8", "PD", "n/a", 2)], three, 4) is None  # a replacement, sized to fit


def test_a_block_running_without_its_first_node_stalls_and_says_so():
    alive = {k: v for k, v in USABLE.items() if k != "n1"}
    reason = stall.stall_reason([Block("7", "R", "n1", 4)], alive, 4)
    assert reason.startswith("block job 7 lost its first node") and "only 3 of the partition" in reason
    two = [Block("7", "R", "n1", 4), Block("9", "R", "n2", 4)]
    assert stall.stall_reason(two, alive, 2) is None  # another block runs


def test_slurm_errors_are_one_line_naming_the_tool_once_and_the_fix():
    err = slurm.SlurmError
    try:
        slurm._run(["sh", "-c", "echo 'sh: fatal: no config' >&2; exit 1"])
    except err as e:
        assert str(e).startswith("Slurm unreachable: sh: fatal: no config (is a cluster up")
        assert "\n" not in str(e)
    else:
        raise AssertionError("no error")
