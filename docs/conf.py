"""Sphinx configuration: MyST pages, CLI reference generated from the argparse parsers (sphinx-argparse),
the Python API from the docstrings (autodoc, Google style read by napoleon).

Built by scripts/docs.sh (warnings are errors, nitpicky), which scripts/test.sh runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]  # the project's packages, whose parsers the CLI pages render

project = "parsl-mpi-stack"
author = "parsl-mpi-stack contributors"
extensions = ["myst_parser", "sphinxarg.ext", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_typehints = "description"  # the types beside each argument, not in one long signature
autodoc_member_order = "bysource"
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []

# Internal links are checked at build time: a link to a page or heading that does not exist is a warning,
# and scripts/docs.sh makes every warning an error. Headings get anchors down to level 3 (page.md#anchor).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
nitpicky = True
# the standard library's types in the API's signatures: no intersphinx (the docs build offline)
nitpick_ignore_regex = [("py:class", r"(pathlib|collections\.abc|typing)\.\w+")]

html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "Parsl + Slurm + Flux + Spack", "fixed_sidebar": True}
