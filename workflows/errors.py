"""The one error base of the workflows package: its message is the line its commands print (projectdir/cli.py)."""

from projectdir import cli


class WorkflowsError(cli.Error):
    """A workflow command's failure (exit 1), or with `refused = True` its refusal of bad input (exit 2)."""
