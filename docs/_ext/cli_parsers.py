"""Parsers of the CLIs that build theirs inside main() (no function returns it), for sphinx-argparse.

`built_by(main)` calls main() with argparse's parsing stopped at its first call, so nothing after the
parser is built runs, and returns that parser. Prefer a module-level `parser()` function where the
module can have one: then the page names it directly (`:module: M` `:func: parser`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any
from unittest import mock


class _Built(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def built_by(main: Callable[[list[str]], Any]) -> argparse.ArgumentParser:
    """The parser main() builds, taken where it starts parsing (parse_args goes through parse_known_args)."""

    def stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _Built(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_known_args", stop):
        try:
            main([])
        except _Built as built:
            return built.parser
    raise RuntimeError(f"{main.__module__}.main() returned without parsing its arguments")


def workflows_demo() -> argparse.ArgumentParser:
    from workflows import demo

    return built_by(demo.main)


def workflows_bench() -> argparse.ArgumentParser:
    from workflows import bench

    return built_by(bench.main)


def workflows_environment() -> argparse.ArgumentParser:
    from workflows import environment

    return built_by(environment.main)
