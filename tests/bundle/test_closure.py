"""What a ship sends the target: remote.py's import closure, computed from the sources (issue 20 item 5).
The benchmarks, the CLI and ship.py stay home; what is shipped runs on a bare python3 with nothing of
this project on its path (a local `ssh` stand-in that runs the command in an empty environment at /)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from bundle import closure, deploy, ship
from tests.bundle.conftest import Built, key

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


def test_the_shipped_closure_redeploys_on_a_bare_python(built: Built, target: Path, bare_ssh: str) -> None:
    report = ship.ship(built.bundle, f"here:{target}", ssh=bare_ssh)
    assert report["target"] == str(target) and len(report["sent_paths"]) == 4
    hello = subprocess.run([str(target / key("hello") / "bin/hello")], capture_output=True, text=True, check=True)
    assert hello.stdout == "hello from libgreet\n"
    assert deploy.verify_deployment(target)["problems"] == []
    again = ship.ship(built.bundle, f"here:{target}", ssh=bare_ssh)
    assert again["sent_paths"] == [] and again["written_paths"] == []


def test_a_shipped_module_is_only_what_was_sent(bare_ssh: str) -> None:
    """On the target, a module left home cannot be imported (the loader serves only the closure)."""
    probe = ("import importlib\nfor m in ('bundle.remote', 'bundle.bench'):\n    try:\n"
             "        importlib.import_module(m)\n        print(m, 'ok')\n    except ImportError:\n"
             "        print(m, 'missing')\n")
    blob = zlib.compress(json.dumps(closure.closure(ship.PACKAGE, ship.ENTRY)).encode(), 9)
    start = "from bundle import remote\nsys.exit(remote.main())\n"
    loader = ship.LOADER.replace("@SIZE@", str(len(blob))).replace(start, probe).encode()
    code = str(len(loader)).encode() + b"\n" + loader + blob
    proc = subprocess.run([bare_ssh, "here", ship.REMOTE], input=code, capture_output=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert proc.stdout.decode().split("\n")[:2] == ["bundle.remote ok", "bundle.bench missing"], proc.stderr
