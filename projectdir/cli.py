"""One shape for every console script, so each main is a parser and a body, not its own conventions.

The name in usage, help and every error line is the command the user typed: the console script's name,
`python -m PACKAGE`, `python workflows/run.py`, or scripts/NAME.sh when the thin script ran it (it says so in
$PARSL_MPI_STACK_PROG, which the first command to read it removes, so the commands it starts name
themselves). Exit status: 0 done, 1 failed, 2 refused (bad input, nothing done; argparse's usage errors too),
130 interrupted. A package's errors subclass its one base (a subclass of Error here); the main prints one
line, `prog: message`, and the class says refusal or failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NoReturn

PROG_ENV = "PARSL_MPI_STACK_PROG"
OK, FAILED, REFUSED, INTERRUPTED = 0, 1, 2, 130


class Error(Exception):
    """A failure the command prints as one line and exits 1 for; `refused = True` on a subclass: bad input, 2."""

    refused: ClassVar[bool] = False

    def lines(self, prog: str) -> list[str]:
        """What stderr gets: `prog: message`, on one line (a name that is not UTF-8 shown escaped)."""
        return [one_line(f"{prog}: {self}")]


def one_line(text: str) -> str:
    """TEXT printable on any terminal, on one line: names that are not UTF-8 shown escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\n", " ")


def exit_code(err: Exception) -> int:
    """2 for a refusal, 1 for any other failure (an error class without `refused` fails)."""
    return REFUSED if getattr(err, "refused", False) else FAILED


def prog() -> str:
    """The command the user typed, by the rule above (Python 3.14's argparse's for `-m` and files)."""
    typed = os.environ.pop(PROG_ENV, "")
    if typed:
        return typed
    python = os.path.basename(sys.executable) or "python3"
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name != "__main__":
        return f"{python} -m {spec.name.removesuffix('.__main__')}"
    arg0 = sys.argv[0] if sys.argv else ""
    return f"{python} {arg0}" if arg0.endswith(".py") else os.path.basename(arg0) or "parsl-mpi-stack"


class Parser(argparse.ArgumentParser):
    """argparse's, but a usage error is one line, `prog: message`, exit 2, with no usage block; and an option
    it does not know is named even when a required argument (a subcommand) is missing too."""

    _words: list[str] = []

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> tuple[Any, list[str]]:  # type: ignore[override]
        self._words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def unknown_options(self) -> list[str]:
        """The words before any `--` that look like options and are none of this parser's (nor a prefix of one)."""
        words = self._words[:self._words.index("--")] if "--" in self._words else self._words
        known = self._option_string_actions
        return [w for w in words if w.startswith("-") and len(w) > 1 and not w[1:2].isdigit()
                and not any(k.startswith(w.split("=")[0]) for k in known)]

    def error(self, message: str) -> NoReturn:
        unknown = self.unknown_options()
        if unknown and message.startswith("the following arguments are required"):
            message = f"unrecognized arguments: {' '.join(unknown)}"
        self.exit(REFUSED, one_line(f"{self.prog}: {message}") + "\n")


def run(body: Callable[[str], int], base: type[Exception] = Error) -> int:
    """BODY(prog)'s exit status; a BASE error or Ctrl-C (SIGINT) one line on stderr and its status, no traceback.

    BASE is Error (every package's base) except for bundle's, which is shipped to Python 3.6 and so stands alone.
    """
    name = prog()
    try:
        return body(name)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except base as err:
        print("\n".join(err.lines(name) if isinstance(err, Error) else [one_line(f"{name}: {err}")]), file=sys.stderr)
        return exit_code(err)
