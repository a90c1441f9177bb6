"""What a ship sends the target: remote.py's import closure, computed from the sources (issue 20 item 5).
The benchmarks, the CLI and ship.py stay home; what is shipped runs on a bare python3 with nothing of
this project on its path (a local `ssh` stand-in that runs the command in an empty environment at /),
3.6 or newer (issue 26: RHEL 8's python3), and an older one is refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from bundle import closure, deploy, ship
from bundle.errors import BundleError
from tests.bundle.conftest import Built, key
from tests.pythons import OLDEST_LOGIN, OLDEST_TARGET, TOO_OLD_TARGET, interpreter

REMOTE_NEEDS = {"bundle", "bundle.remote", "bundle.deploy", "bundle.reader", "bundle.tarstream", "bundle.staging",
                "bundle.validate", "bundle.manifest", "bundle.owned", "bundle.errors"}
STAY_HOME = {"bundle.bench", "bundle.benchship", "bundle.ship", "bundle.__main__", "bundle.closure", "bundle.writer"}


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
    every = {closure.module_name("bundle", p) for p in ship.PACKAGE.glob("*.py")}
    for module, text in sources.items():  # closed: nothing a shipped module imports is left behind
        assert closure.imported(text, module, "bundle", every) <= sources.keys(), module


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
        path = tmp_path / (module.replace(".", "/") + ("/__init__.py" if module == "bundle" else ".py"))
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
    assert deploy.verify_deployment(target)["problems"] == []
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
    probe = ("import importlib\nfor m in ('bundle.remote', 'bundle.bench'):\n    try:\n"
             "        importlib.import_module(m)\n        print(m, 'ok')\n    except ImportError:\n"
             "        print(m, 'missing')\n")
    blob = zlib.compress(json.dumps(closure.closure(ship.PACKAGE, ship.ENTRY)).encode(), 9)
    start = "from bundle import remote\nsys.exit(remote.main())\n"
    loader = ship.loader(len(blob)).replace(start, probe).encode()
    code = str(len(loader)).encode() + b"\n" + loader + blob
    proc = subprocess.run([bare_ssh, "here", ship.remote_command()], input=code, capture_output=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert proc.stdout.decode().split("\n")[:2] == ["bundle.remote ok", "bundle.bench missing"], proc.stderr
