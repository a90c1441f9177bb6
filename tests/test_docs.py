"""The docs stay in step with the code: a short README whose links resolve, CLI pages bound to real parsers.

The build itself (every internal link and anchor, warnings as errors) is scripts/docs.sh, run by scripts/test.sh.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import re
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
DOCS = PROJECT / "docs"
PACKAGES = ("workflows", "bundle", "localcluster", "spackenv", "upstream")


def directives() -> list[tuple[str, str, str]]:
    """(page, module, func) of every `.. argparse::` directive in the docs."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        for block in re.findall(r"\.\. argparse::\n((?:   :\S+:.*\n)+)", page.read_text()):
            opts = dict(re.findall(r":(\w+):[ \t]*(.*)", block))
            found.append((str(page.relative_to(DOCS)), opts["module"], opts["func"]))
    return found


def test_the_readme_is_short_and_its_links_resolve():
    readme = PROJECT / "README.md"
    assert readme.stat().st_size < 8 * 1024
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme.read_text())
    assert links
    missing = [link for link in links if "://" not in link and not (PROJECT / link).exists()]
    assert missing == []


@pytest.mark.parametrize("page, module, func", directives(), ids=lambda x: str(x))
def test_each_cli_page_renders_a_parser_that_exists(page, module, func):
    parser = getattr(importlib.import_module(module), func)()
    assert isinstance(parser, argparse.ArgumentParser), (page, module, func)


def test_every_python_cli_a_script_runs_has_its_page():
    """A scripts/*.sh or scripts/console-script run of a project CLI (`python -m PACKAGE...`, or one of the
    console scripts, parsl-mpi-*) is named on a CLI reference page, by the script's name or its `python -m` form."""
    pages = "\n".join(p.read_text() for p in (DOCS / "cli").glob("*.md"))
    entry_points = {e.name: e.module for e in importlib.metadata.distribution("parsl-mpi-stack").entry_points}
    run: dict[str, set[str]] = {}  # what a script runs -> the names a page may give it
    for script in (PROJECT / "scripts").iterdir():
        text = script.read_text()
        for m in re.findall(r"-m (\w+(?:\.\w+)*)", text):
            if m.split(".")[0] in PACKAGES:
                run[m] = {f"python -m {m}"}
        for name in re.findall(r"\b(parsl-mpi-[\w-]+)", text):
            module = entry_points[name]
            run[name] = {name, f"python -m {module}",
                         f"python -m {module.removesuffix('.__main__').removesuffix('.cli')}"}
    assert run
    run = {what: names | {n.replace("python -m ", "python3 -m ") for n in names} for what, names in run.items()}
    assert sorted(what for what, names in run.items() if not any(n in pages for n in names)) == []
