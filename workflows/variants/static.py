"""The static-blocks workaround: repeats blocks, fixed (init = min = max), one worker each.

Each MPI run owns one block of nodes; Parsl's scaling never changes the block count, which the
run samples from squeue to show. Launching is the same as htex's (slots given explicitly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..settings import Settings
from ..verify import block_count_problems
from .base import parsl_config
from .htex import Htex, executor

if TYPE_CHECKING:
    from parsl.config import Config


class Static(Htex):
    name = "static"
    summary = "the same, init = min = max = R blocks, one worker each"

    def config(self, s: Settings) -> Config:
        return parsl_config(s, executor(s, blocks=(s.repeats, s.repeats, s.repeats), label=self.name))

    def problems(self, s: Settings, block_samples: list[tuple[float, int]]) -> list[str]:
        return block_count_problems(block_samples, s.repeats)
