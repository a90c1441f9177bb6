"""python -m workflows run VARIANT | clean | visualize RUN_DIR (see workflows/cli.py)."""

import sys

from .cli import main

if __name__ == "__main__":  # Parsl's monitoring spawns processes that import the main module as __mp_main__
    sys.exit(main())
