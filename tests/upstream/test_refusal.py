"""upstream/pythons.py's one line for a Python older than the login tools need (the subprocess runs on
real old Pythons are tests/test_pythons.py's)."""

from __future__ import annotations

from upstream.pythons import LOGIN_TOOLS, refusal


def test_an_older_python_gets_one_line_naming_both_versions() -> None:
    line = refusal((3, 8, 18, "final", 0), "/usr/bin/python3")
    assert line == ("parsl-mpi-stack: this is Python 3.8.18 (/usr/bin/python3); the login tools (upstream, spackenv, "
                    "bundle, workflows.environment) need Python 3.9 or newer")
    assert "\n" not in line and refusal((3, 6, 8), "")  # no executable known: still one line
    assert refusal((2, 7, 18), "python") != ""


def test_the_floor_and_newer_are_accepted() -> None:
    assert LOGIN_TOOLS == (3, 9)
    assert refusal((3, 9, 0), "python3") == "" and refusal((3, 13, 0), "python3") == ""
    assert refusal((3, 10, 13), "python3", need=(3, 10)) == "" and refusal((3, 9, 18), "python3", need=(3, 10))
