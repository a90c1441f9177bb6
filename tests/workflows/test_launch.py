"""The MPI launch line states the slots explicitly, per MPI flavour."""

import pytest

from workflows import launch


def test_slurm_count_lists_expand():
    assert launch.expand_counts("2(x3),4") == [2, 2, 2, 4]
    with pytest.raises(ValueError):
        launch.expand_counts("2x3")


def test_parsl_task_environment_gives_nodes_and_ranks_per_node():
    env = {"PARSL_MPI_NODELIST": "n2,n4", "PARSL_RANKS_PER_NODE": "2"}
    assert launch.placement_from_parsl(env) == (["n2", "n4"], 2)


def test_a_node_whose_port_refuses_is_unreachable():
    import socket

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert launch.unreachable(["127.0.0.1"], port) == []
    assert launch.unreachable(["127.0.0.1"], port) == ["127.0.0.1"]
