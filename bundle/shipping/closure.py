"""Which modules a ship's target runs: the import closure of its entry module (bundle.shipping.remote), read
from the sources with ast, so that what is shipped follows the code. A module nothing on the remote side
imports (the benchmarks, the CLI, the API, ship.py itself) never reaches the target, whatever is added later.

Pure apart from reading the package's files. Imports anywhere in a module count (inside functions
too: shipping a module that is not needed costs bytes, missing one breaks the target), except under
`if TYPE_CHECKING:`, which never runs. Importing a.b.c runs a/__init__.py and a/b/__init__.py first, so
the closure holds the __init__ of every package on the way (and they run on the target: bundle/__init__.py
names the API lazily for that reason).
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_name(package_dir: Path, path: Path) -> str:
    """The module of the file PATH below PACKAGE_DIR (a package's __init__.py is the package itself)."""
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package_dir: Path) -> dict[str, Path]:
    """Module -> file, for the package in PACKAGE_DIR and its subpackages."""
    return {module_name(package_dir, p): p for p in sorted(package_dir.rglob("*.py"))}


def _anchor(module: str, is_package: bool, level: int) -> str:
    """What `from .` (LEVEL dots) means inside MODULE."""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    return ".".join(parts[:len(parts) - (level - 1)])


def _names_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _never_run(tree: ast.Module) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (only the type checker reads them)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _names_type_checking(node.test):
            found |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return found


def imported(source: str, module: str, package: str, modules: set[str]) -> set[str]:
    """The modules of PACKAGE (one of MODULES) that SOURCE, the text of MODULE, imports, with every package
    on the way to each (importing p.x runs p/__init__.py first): `import p.x`, `from p import x` (x a module
    or a name), `from p.x import y`, `from . import x`."""
    is_package = module == package or any(m.startswith(module + ".") for m in modules)
    tree = ast.parse(source)
    skip = _never_run(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _anchor(module, is_package, node.level)
                base = f"{anchor}.{base}" if base else anchor
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    found |= {".".join(name.split(".")[:i]) for name in found for i in range(1, name.count(".") + 1)} & modules
    return found - {module}


def closure(package_dir: Path, entry: str) -> dict[str, str]:
    """Module -> source of ENTRY and of every module of the package in PACKAGE_DIR it needs, directly or not."""
    package = package_dir.name
    files = modules(package_dir)
    sources: dict[str, str] = {}
    todo = [entry, *(".".join(entry.split(".")[:i]) for i in range(1, entry.count(".") + 1))]
    while todo:
        module = todo.pop()
        if module in sources:
            continue
        sources[module] = files[module].read_text()
        todo += sorted(imported(sources[module], module, package, set(files)) - sources.keys())
    return dict(sorted(sources.items()))


def is_package(module: str, sources: dict[str, str]) -> bool:
    """MODULE is a package among SOURCES (its file is __init__.py): some other module lies below it."""
    return any(m.startswith(module + ".") for m in sources)
