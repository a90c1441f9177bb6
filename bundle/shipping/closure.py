"""Which modules a ship's target runs: the import closure of its entry module (bundle.remote), read from
the sources with ast, so that what is shipped follows the code. A module nothing on the remote side
imports (the benchmarks, the CLI, ship.py itself) never reaches the target, whatever is added later.

Pure apart from reading the package's files. Imports anywhere in a module count (inside functions
too: shipping a module that is not needed costs bytes, missing one breaks the target).
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_name(package: str, path: Path) -> str:
    """PACKAGE's module for the file PATH (a flat package: __init__.py is the package itself)."""
    return package if path.stem == "__init__" else f"{package}.{path.stem}"


def _anchor(module: str, is_package: bool, level: int) -> str:
    """What `from .` (LEVEL dots) means inside MODULE."""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    return ".".join(parts[:len(parts) - (level - 1)])


def imported(source: str, module: str, package: str, modules: set[str]) -> set[str]:
    """The modules of PACKAGE (one of MODULES) that SOURCE, the text of MODULE, imports, and the package
    itself when it imports any: `import p.x`, `from p import x` (x a module or a name), `from p.x import y`,
    `from . import x`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _anchor(module, module == package, node.level)
                base = f"{anchor}.{base}" if base else anchor
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    if found:
        found.add(package)  # importing p.x runs p/__init__.py first
    return found - {module}


def closure(package_dir: Path, entry: str) -> dict[str, str]:
    """Module -> source of ENTRY and of every module of the package in PACKAGE_DIR it needs, directly or not."""
    package = package_dir.name
    files = {module_name(package, p): p for p in sorted(package_dir.glob("*.py"))}
    sources: dict[str, str] = {}
    todo = [entry, package]
    while todo:
        module = todo.pop()
        if module in sources:
            continue
        sources[module] = files[module].read_text()
        todo += sorted(imported(sources[module], module, package, set(files)) - sources.keys())
    return dict(sorted(sources.items()))
