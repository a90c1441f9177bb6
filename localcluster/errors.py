"""The one error base of the local cluster: its first line is the line its command prints (projectdir/cli.py)."""

from projectdir import cli


class LocalClusterError(cli.Error):
    """A failure (exit 1), or with `refused = True` a refusal (exit 2); the lines after the first (daemons'
    log tails) go to stderr before `prog: first line`, so the last line says what went wrong."""

    def lines(self, prog: str) -> list[str]:
        first, *rest = str(self).splitlines() or [""]
        return [*rest, f"{prog}: {first}"]
