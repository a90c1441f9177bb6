"""HighThroughputExecutor + SlurmProvider as users write it (SimpleLauncher, a block per MPI run), fixed.

Two fixes, both here:
- Slots: Parsl submits blocks with --ntasks-per-node=1, so mpirun would see one slot per node.
  workflows.launch gives mpirun the ranks per node explicitly (no SLURM_TASKS_PER_NODE override).
- Scaling: Parsl's strategy counts a block's slots as workers_per_node * nodes_per_block, but a
  SimpleLauncher block runs one worker pool on its first node: nodes_per_block times too many.
  parallelism = nodes_per_block cancels that factor, so one block is requested per waiting run.
Heartbeats every 2 s, a manager silent for 12 s is lost: the runs of a node that died are retried
within seconds instead of Parsl's default two minutes (workflows.launch gives such a block back).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..settings import Settings
from .base import Variant, concurrent_blocks, launch_in_block, parsl_config, slurm_provider

if TYPE_CHECKING:
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor


def executor(s: Settings, *, blocks: tuple[int, int, int], label: str) -> HighThroughputExecutor:
    from parsl.executors import HighThroughputExecutor
    from parsl.launchers import SimpleLauncher

    provider = slurm_provider(s, nodes_per_block=s.nodes_per_run, blocks=blocks, launcher=SimpleLauncher(),
                              parallelism=s.nodes_per_run)
    return HighThroughputExecutor(label=label, address=s.address, max_workers_per_node=1,
                                  cores_per_worker=1, provider=provider, heartbeat_period=2,
                                  heartbeat_threshold=12, worker_logdir_root=str(s.run_dir / "workers"))


class Htex(Variant):
    name = "htex"
    summary = "HighThroughputExecutor + SlurmProvider, a block of K nodes per run"
    rank_launchers = ("mpirun",)

    def config(self, s: Settings) -> Config:
        # All blocks the runs can use are asked for at once; the corrected strategy keeps them right after.
        wanted = concurrent_blocks(s)
        return parsl_config(s, executor(s, blocks=(wanted, 0, wanted), label=self.name), max_idletime=5)

    def run_command(self, s: Settings, binary: str) -> str:
        return launch_in_block(s, binary, "slurm")
