"""The one error base of upstream: its message is the line its command prints (projectdir/cli.py)."""

from projectdir import cli


class UpstreamError(cli.Error):
    """A build's failure (exit 1), or with `refused = True` a refusal of bad input (exit 2)."""
