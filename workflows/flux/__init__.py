"""A FluxExecutor that runs bash apps' commands directly as Flux jobs: no Python in any rank.

Parsl's FluxExecutor starts `python execute_parsl_task.py` in every task of every job, which imports
all of Parsl per rank before the bash app's command runs. Here a bash app's command line is composed
on the submit side (bashjob), and the Flux job runs `/bin/bash -c` on it (executor); Python apps and
anything not recognised go through Parsl's stock path. The private Parsl names this needs are checked
at start-up (guard): if the pinned Parsl changed them, everything takes the stock path.
"""

from .executor import POLL_INTERVAL, DirectFluxExecutor

__all__ = ["DirectFluxExecutor", "POLL_INTERVAL"]
