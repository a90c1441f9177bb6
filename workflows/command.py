"""The user's own MPI program (run.py --command, workflows.api): its words, checked.

The wrapper each rank runs before it is submission.wrapper; where each rank ran is read back from its output
by outputs.parse_command.
"""

from __future__ import annotations

import shlex

from .errors import WorkflowsError


class CommandError(WorkflowsError, ValueError):
    """A --command that cannot run; the message is one line."""

    refused = True


def argv(command: str) -> tuple[str, ...]:
    """--command's text as the program's words (shell quoting), refused in one line when it is none."""
    try:
        words = tuple(shlex.split(command))
    except ValueError as err:
        raise CommandError(f"--command {command!r}: {err}") from None
    if not words:
        raise CommandError("--command is empty: give the MPI program and its arguments, e.g. --command './app -n 10'")
    return words
