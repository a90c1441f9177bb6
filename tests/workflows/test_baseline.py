"""The baseline splits the allocation into disjoint lanes of K nodes."""

from workflows.baseline import lanes


def test_lanes_are_disjoint_and_whole():
    assert lanes(["n1", "n2", "n3", "n4", "n5"], 2) == [["n1", "n2"], ["n3", "n4"]]
    assert lanes(["n1"], 2) == []
