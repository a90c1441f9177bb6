"""relocate: a bundle built at OLD deployed at NEW with --relocate runs there and no longer names OLD."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bundle import deploy
from bundle.manifest import BundleError
from tests.bundle.conftest import build_tree, key, pack, remove_store


def out(*cmd: str | Path) -> str:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=True).stdout.strip()


def relocated(tmp_path: Path, old: Path, new: Path) -> Path:
    """Build at OLD, pack, remove OLD's store, deploy at NEW with --relocate; returns NEW."""
    build_tree(old)
    bundle = pack(old, tmp_path / "bundles" / "env")
    remove_store(old)
    result = deploy.redeploy(bundle, new, relocate=True)
    assert result.target == str(new) and result.relocated_files >= 4
    return new


def check_works_and_forgets(old: Path, new: Path) -> None:
    hello = new / key("hello")
    assert out(hello / "bin/hello") == "hello from libgreet"
    assert out(hello / "bin/hello-wrapper") == "hello from libgreet"  # shebang script, path rewritten
    assert os.path.normpath(out(hello / "bin/hello", "datadir")) == str(hello / "share/doc")  # padded string
    ldd = out("ldd", hello / "bin/hello")
    assert str(new / key("libgreet")) in ldd and str(old) not in ldd
    store = new / "opt"
    grep = subprocess.run(["grep", "-rl", "--", str(old), str(store)], capture_output=True, text=True)
    assert grep.stdout == "" and grep.returncode == 1
    pc = (new / key("libgreet") / "lib/pkgconfig/greet.pc").read_text()
    assert pc.startswith(f"prefix={new / key('libgreet')}\n")
    assert os.readlink(new / key("libgreet") / "lib/libgreet.so") == str(new / key("libgreet") / "lib/libgreet.so.1")
    assert deploy.verify_deployment(new)["problems"] == []


def test_relocate_to_a_shorter_prefix(tmp_path: Path) -> None:
    old, new = tmp_path / "built-at-a-rather-long-prefix" / "root", tmp_path / "n"
    check_works_and_forgets(old, relocated(tmp_path, old, new))


def test_relocate_to_a_longer_prefix_from_a_padded_build(tmp_path: Path) -> None:
    old = tmp_path / ("padded" + "_" * 120) / "root"
    new = tmp_path / "scratch" / "project" / "a-longer-deployment-prefix-than-usual" / "root"
    assert len(str(new)) > len(str(tmp_path / "root"))
    check_works_and_forgets(old, relocated(tmp_path, old, new))
    again = deploy.redeploy(next((tmp_path / "bundles").iterdir()), new, relocate=True)
    assert again.written_paths == []  # incremental also when relocated


def test_longer_prefix_from_an_unpadded_build_refused(tmp_path: Path) -> None:
    old, new = tmp_path / "o", tmp_path / "a-longer-prefix-than-the-build"
    build_tree(old)
    bundle = pack(old, tmp_path / "bundles" / "env")
    remove_store(old)
    with pytest.raises(BundleError, match=r"bin/hello: compiled-in path .* cannot grow .*padded_length"):
        deploy.redeploy(bundle, new, relocate=True)
    assert not new.exists()  # a refused relocation leaves no trace: no target, no .bundle/lock, no staging


def test_tampered_relocated_file_fails_verify(tmp_path: Path) -> None:
    old, new = tmp_path / "long-build-prefix" / "root", tmp_path / "n"
    relocated(tmp_path, old, new)
    pc = new / key("libgreet") / "lib/pkgconfig/greet.pc"
    pc.write_text(pc.read_text().replace("greet", "gReet"))
    assert any("greet.pc" in p for p in deploy.verify_deployment(new)["problems"])
