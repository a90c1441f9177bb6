"""Build the flux variant's Config and run one bash app in a local two-broker instance; print what happened.

Run by test_parsl_seam.py in a Python whose Parsl had a private name renamed (sitecustomize.py, beside
this): nothing here may raise an ImportError; the executor must say it falls back and still give the result.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import weakref
from pathlib import Path

import parsl
from parsl.app.app import bash_app
from parsl.config import Config
from parsl.providers import LocalProvider

from workflows import variants
from workflows.flux import instance
from workflows.settings import Settings
from workflows.variants.flux import executor_class


@bash_app
def hello(stdout: str | None = None) -> str:
    return 'echo "hello from rank $FLUX_TASK_RANK"'


def main(work: Path) -> dict:
    module, name = os.environ["RENAMED_PARSL"].split(":")
    renamed = not hasattr(importlib.import_module(module), name)
    settings = Settings(variant="flux", run_dir=Path("/shared/run"))  # the Config is built, never run
    variant_config = variants.get("flux").config(settings)
    for fin in list(weakref.finalize._registry):  # type: ignore[attr-defined]  # its block is never started
        if fin.peek() and fin.peek()[0] is variant_config.executors[0]:
            fin.detach()
    flux = instance.flux_command() or "flux"
    launch = instance.launch_cmd("", flux, instance.bindings_path(flux), str(work / "flux")).replace(
        "{flux} start", "{flux} start --test-size=2")
    ex = executor_class("direct")(label="flux", working_dir=str(work / "flux"), flux_path=flux, launch_cmd=launch,
                                  provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1))
    parsl.load(Config(executors=[ex], run_dir=str(work / "runinfo")))
    try:
        result = hello(stdout=str(work / "hello.out")).result(timeout=120)
    finally:
        parsl.dfk().cleanup()
        ex.provider.cancel(list(ex.provider.resources))
    return {"renamed": renamed, "variant_executor": type(variant_config.executors[0]).__name__,
            "direct": [variant_config.executors[0].direct, ex.direct], "result": result,
            "stdout": (work / "hello.out").read_text(),
            "pickles": sorted(p.name for p in (work / "flux").glob("*.pkl"))}


def cli() -> None:
    """Imported, not run as a script: the stock path's ranks unpickle hello from this module by its name."""
    print(json.dumps(main(Path(sys.argv[1]))))
