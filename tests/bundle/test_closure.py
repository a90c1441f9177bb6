"""What a ship sends the target: remote.py's import closure, computed from the sources (issue 20 item 5).
The benchmarks, the CLI and ship.py stay home; what is shipped runs on a bare python3 with nothing of
this project on its path (a local `ssh` stand-in that runs the command in an empty environment at /),
3.6 or newer (issue 26: RHEL 8's python3), and an older one is refused in one line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from bundle.deploying.verify import verify_deployment
from bundle.errors import BundleError
from bundle.shipping import closure, ship
from tests.bundle.conftest import Built, key
from tests.pythons import OLDEST_LOGIN, OLDEST_TARGET, TOO_OLD_TARGET, interpreter

REMOTE_NEEDS = {"bundle", "bundle.shipping.remote", "bundle.deploying.redeploy", "bundle.reading.reader",
                "bundle.reading.tarstream", "bundle.deploying.stage", "bundle.format.validate",
                "bundle.format.manifest", "bundle.format.reserved", "bundle.errors",
                # the package of each, which the target runs first
                "bundle.shipping", "bundle.deploying", "bundle.reading", "bundle.format"}
STAY_HOME = {"bundle.bench", "bundle.benchship", "bundle.shipping.ship", "bundle.__main__", "bundle.shipping.closure",
             "bundle.packing.writer", "bundle.packing.scan", "bundle.packing", "bundle.api", "bundle.cli",
             "bundle.spack.store"}


def shipped(blob: bytes) -> dict[str, str]:
    """The sources in ship.code()'s bytes, read as the target reads them."""
    first, rest = blob.split(b"\n", 1)
    loader = rest[:int(first)].decode()
    size = int(loader.split("sys.stdin.buffer.read(", 1)[1].split(")", 1)[0])
    return json.loads(zlib.decompress(rest[int(first):int(first) + size]))


def test_the_closure_holds_what_remote_needs_and_no_benchmark() -> None:
    sources = shipped(ship.code())
    assert REMOTE_NEEDS <= sources.keys() and not sources.keys() & STAY_HOME
    assert sources == closure.closure(ship.PACKAGE, ship.ENTRY)
    every = set(closure.modules(ship.PACKAGE))
    for module, text in sources.items():  # closed: nothing a shipped module imports is left behind
        assert closure.imported(text, module, "bundle", every) <= sources.keys(), module


def test_a_subpackage_s_init_is_shipped_and_type_checking_imports_are_not() -> None:
    """Importing p.s.m runs p/__init__.py and p/s/__init__.py first; `if TYPE_CHECKING:` never runs."""
    modules = {"p", "p.s", "p.s.m", "p.s.n", "p.api"}
    text = ("from typing import TYPE_CHECKING\nfrom p.s.m import f\nfrom . import n\n"
            "if TYPE_CHECKING:\n    import p.api\n")
    assert closure.imported(text, "p.s.x", "p", modules) == {"p", "p.s", "p.s.m", "p.s.n"}
    assert closure.imported("from .. import api\n", "p.s", "p", modules) == {"p", "p.api"}  # p.s is a package


def test_the_api_is_named_lazily_so_the_target_s_import_of_bundle_stays_small() -> None:
    """bundle/__init__.py runs on the target: it names the API (bundle.pack, ...) without importing it."""
    sources = closure.closure(ship.PACKAGE, ship.ENTRY)
    assert closure.imported(sources["bundle"], "bundle", "bundle", set(closure.modules(ship.PACKAGE))) == \
        {"bundle.errors"}
    import bundle

    assert bundle.pack.__module__ == "bundle.api" and {"pack", "redeploy", "verify", "diff"} <= set(dir(bundle))


def test_ruff_checks_what_is_shipped_for_python_3_6() -> None:
    """pyproject.toml's py37 lines (ruff's oldest target) cover exactly the shipped files."""
    text = (ship.PACKAGE.parent / "pyproject.toml").read_text()
    globs = re.findall(r'^"(bundle/[^"]+)" = "py37"$', text, re.M)
    listed = {str(p.relative_to(ship.PACKAGE.parent)) for g in globs for p in _expand(ship.PACKAGE.parent, g)}
    shipped = {str(p.relative_to(ship.PACKAGE.parent)) for m, p in closure.modules(ship.PACKAGE).items()
               if m in closure.closure(ship.PACKAGE, ship.ENTRY)}
    assert listed == shipped


def _expand(root: Path, pattern: str) -> list[Path]:
    """A glob with one {a,b} group, as ruff reads it."""
    group = re.search(r"\{([^}]*)\}", pattern)
    if group is None:
        return sorted(root.glob(pattern))
    return [p for alt in group[1].split(",") for p in _expand(root, pattern.replace(group[0], alt, 1))]


def test_imports_found_anywhere_in_a_module() -> None:
    modules = {"p", "p.a", "p.b", "p.c", "p.d", "p.e"}
    text = ("import os\nimport p.a\nfrom p import b, NAME\nfrom .c import f\n"
            "def g():\n    from p.d import h\n    from . import e\n")
    assert closure.imported(text, "p.x", "p", modules) == {"p", "p.a", "p.b", "p.c", "p.d", "p.e"}
    assert closure.imported("import os\n", "p.x", "p", modules) == set()


@pytest.fixture
def bare_ssh(tmp_path: Path) -> str:
    """An `ssh` that runs the remote command here, in an empty environment at / (no PYTHONPATH, no venv)."""
    if shutil.which("python3", path="/usr/bin:/bin") is None:
        pytest.skip("no python3 in /usr/bin or /bin")
    script = tmp_path / "bare-ssh"
    script.write_text('#!/bin/sh\nshift\ncd / && exec env -i PATH=/usr/bin:/bin sh -c "$1"\n')
    script.chmod(0o755)
    return str(script)


def test_the_shipped_closure_compiles_and_imports_on_python_3_6(tmp_path: Path) -> None:
    """Python 3.6's own compiler over every shipped module, then an import of each there (annotations are
    evaluated at import on 3.6): a later change that uses newer syntax or typing fails here, no cluster needed."""
    python = interpreter(OLDEST_TARGET)
    sources = closure.closure(ship.PACKAGE, ship.ENTRY)
    files = []
    for module, text in sources.items():
        tail = "/__init__.py" if closure.is_package(module, sources) else ".py"
        path = tmp_path / (module.replace(".", "/") + tail)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append(str(path))
    compiled = subprocess.run([str(python), "-m", "py_compile", *files], capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stderr
    probe = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')\n"
    imported = subprocess.run([str(python), "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + probe,
                               *sources], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert imported.stdout == "ok\n", imported.stderr


@pytest.fixture(params=["python3", OLDEST_TARGET, OLDEST_LOGIN])
def remote_python(request: pytest.FixtureRequest) -> str:
    """The target's Python: the system's python3 (the default), RHEL 8's 3.6, RHEL 9's 3.9 (pyenv's)."""
    return request.param if request.param == "python3" else str(interpreter(request.param))


def test_the_shipped_closure_redeploys_on_a_bare_python(built: Built, target: Path, bare_ssh: str,
                                                        remote_python: str) -> None:
    report = ship.ship(built.bundle, f"here:{target}", ssh=bare_ssh, python=remote_python)
    assert report["target"] == str(target) and len(report["sent_paths"]) == 4
    hello = subprocess.run([str(target / key("hello") / "bin/hello")], capture_output=True, text=True, check=True)
    assert hello.stdout == "hello from libgreet\n"
    assert verify_deployment(target)["problems"] == []
    again = ship.ship(built.bundle, f"here:{target}", ssh=bare_ssh, python=remote_python)
    assert again["sent_paths"] == [] and again["written_paths"] == []


def test_a_target_python_older_than_3_6_is_refused_in_one_line(built: Built, target: Path, bare_ssh: str) -> None:
    old = str(interpreter(TOO_OLD_TARGET))
    with pytest.raises(BundleError) as refused:
        ship.ship(built.bundle, f"here:{target}", ssh=bare_ssh, python=old)
    assert str(refused.value) == (f"here: {old} there is Python {TOO_OLD_TARGET}; a ship's target needs "
                                  "Python 3.6 or newer")
    assert not target.exists()  # refused before anything was made
    with pytest.raises(BundleError, match=r"^here: no /nonexistent/python3 there \(the target needs ssh and Python "
                                          r"3\.6 or newer; see --remote-python\)$"):
        ship.ship(built.bundle, f"here:{target}", ssh=bare_ssh, python="/nonexistent/python3")


def test_a_shipped_module_is_only_what_was_sent(bare_ssh: str) -> None:
    """On the target, a module left home cannot be imported (the loader serves only the closure)."""
    probe = ("import importlib\nfor m in ('bundle.shipping.remote', 'bundle.bench'):\n    try:\n"
             "        importlib.import_module(m)\n        print(m, 'ok')\n    except ImportError:\n"
             "        print(m, 'missing')\n")
    blob = zlib.compress(json.dumps(closure.closure(ship.PACKAGE, ship.ENTRY)).encode(), 9)
    start = "from bundle.shipping import remote\nsys.exit(remote.main())\n"
    loader = ship.loader(len(blob)).replace(start, probe).encode()
    code = str(len(loader)).encode() + b"\n" + loader + blob
    proc = subprocess.run([bare_ssh, "here", ship.remote_command()], input=code, capture_output=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert proc.stdout.decode().split("\n")[:2] == ["bundle.shipping.remote ok", "bundle.bench missing"], proc.stderr
