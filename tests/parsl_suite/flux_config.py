"""The Config both of Parsl's --config files load: one executor in a local two-broker Flux instance.

Only the executor's class differs between config_stock.py and config_direct.py; the instance is the flux
variant's (its launch command, job-shell initrc and Flux's bindings on PYTHONPATH), with two brokers.
"""

from __future__ import annotations

import tempfile

from parsl.config import Config
from parsl.executors import FluxExecutor
from parsl.providers import LocalProvider

from workflows.flux import instance

BROKERS = 2


def fresh_config(executor: type[FluxExecutor]) -> Config:
    flux = instance.flux_command() or "flux"
    # the broker config the launch command writes: outside a Slurm job it names no resources (Flux finds them)
    config_dir = tempfile.mkdtemp(prefix="parsl-suite-flux-")
    launch = instance.launch_cmd("", flux, instance.bindings_path(flux), config_dir).replace(
        "{flux} start", f"{{flux}} start --test-size={BROKERS}")
    return Config(executors=[executor(label="flux", flux_path=flux, launch_cmd=launch,
                                      provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1))])
