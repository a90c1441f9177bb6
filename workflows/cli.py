"""TEMPORARY (branch docs): the workflows CLI's parser, for the docs' CLI reference (docs/cli/workflows.md).

The workflows CLI (`python -m workflows run VARIANT | clean | visualize RUN_DIR`, its own parser() here)
replaces this file when it lands; until then the parser is run.py's.
"""

from workflows.run import parser

__all__ = ["parser"]
