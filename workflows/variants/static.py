"""The static-blocks workaround: repeats blocks, fixed (init = min = max), one worker each.

Each MPI run owns one block of nodes; Parsl's scaling never changes the block count, which the
run samples from squeue to show. Launching is the same as htex's (slots given explicitly).
"""

from __future__ import annotations

from parsl.config import Config

from ..settings import Settings
from . import htex

run_command = htex.run_command
run_resources = htex.run_resources
compile_resources = htex.compile_resources


def config(s: Settings) -> Config:
    ex = htex.executor(s, blocks=(s.repeats, s.repeats, s.repeats), label="static")
    return Config(executors=[ex], run_dir=str(s.run_dir / "runinfo"), retries=s.retries,
                  strategy_period=s.strategy_period)
