"""python workflows/run.py VARIANT [options] | clean | visualize RUN_DIR: the design's command, kept.

The same as `python -m workflows run ...` (workflows/cli.py). Run as a file, this script sits inside
its package without being part of it, and the checkout need not be installed (on a cluster, conda's
Python runs it from the checkout): so it loads the package from its own folder, and projectdir (the
commands' shared shape, projectdir/cli.py) from beside it, the importlib recipe for a source file, rather
than putting the project on sys.path. Nothing imports this module.
"""

import importlib.util
import sys
from pathlib import Path


def load_package(folder: Path) -> None:
    """The package in FOLDER under its folder's name, unless one is imported already."""
    if folder.name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(folder.name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[folder.name] = package
    spec.loader.exec_module(package)


def unshadow() -> None:
    """Python put this folder first on sys.path: its flux/ would hide Flux's own `flux` bindings package."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != here]


if __name__ == "__main__":  # guarded: Parsl's monitoring spawns processes that run this file as __mp_main__
    unshadow()
    here = Path(__file__).resolve().parent
    load_package(here.parent / "projectdir")
    load_package(here)
    from workflows.cli import main

    sys.exit(main(as_run_py=True))
