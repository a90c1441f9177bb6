"""The one error base of spackenv: its message is the line its commands print (projectdir/cli.py)."""

from projectdir import cli


class SpackenvError(cli.Error):
    """A check's or benchmark's failure (exit 1), or with `refused = True` a refusal of bad input (exit 2)."""
