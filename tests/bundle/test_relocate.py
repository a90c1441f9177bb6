"""relocate: a bundle built at OLD deployed at NEW with --relocate runs there and no longer names OLD."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bundle.deploying.redeploy import redeploy
from bundle.deploying.verify import verify_deployment
from bundle.errors import BundleError
from bundle.format import manifest
from bundle.packing import scan
from bundle.relocation import rewrite
from tests.bundle.conftest import build_tree, key, pack, remove_store


def out(*cmd: str | Path) -> str:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=True).stdout.strip()


def relocated(tmp_path: Path, old: Path, new: Path) -> Path:
    """Build at OLD, pack, remove OLD's store, deploy at NEW with --relocate; returns NEW."""
    build_tree(old)
    bundle = pack(old, tmp_path / "bundles" / "env")
    remove_store(old)
    result = redeploy(bundle, new, relocate=True)
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
    assert verify_deployment(new)["problems"] == []


def test_relocate_to_a_shorter_prefix(tmp_path: Path) -> None:
    old, new = tmp_path / "built-at-a-rather-long-prefix" / "root", tmp_path / "n"
    check_works_and_forgets(old, relocated(tmp_path, old, new))


def test_relocate_to_a_longer_prefix_from_a_padded_build(tmp_path: Path) -> None:
    old = tmp_path / ("padded" + "_" * 120) / "root"
    new = tmp_path / "scratch" / "project" / "a-longer-deployment-prefix-than-usual" / "root"
    assert len(str(new)) > len(str(tmp_path / "root"))
    check_works_and_forgets(old, relocated(tmp_path, old, new))
    again = redeploy(next((tmp_path / "bundles").iterdir()), new, relocate=True)
    assert again.written_paths == []  # incremental also when relocated


def test_longer_prefix_from_an_unpadded_build_refused(tmp_path: Path) -> None:
    old, new = tmp_path / "o", tmp_path / "a-longer-prefix-than-the-build"
    build_tree(old)
    bundle = pack(old, tmp_path / "bundles" / "env")
    remove_store(old)
    with pytest.raises(BundleError, match=r"bin/hello: compiled-in path .* cannot grow .*padded_length"):
        redeploy(bundle, new, relocate=True)
    assert not new.exists()  # a refused relocation leaves no trace: no target, no .bundle/lock, no staging


def test_tampered_relocated_file_fails_verify(tmp_path: Path) -> None:
    old, new = tmp_path / "long-build-prefix" / "root", tmp_path / "n"
    relocated(tmp_path, old, new)
    pc = new / key("libgreet") / "lib/pkgconfig/greet.pc"
    pc.write_text(pc.read_text().replace("greet", "gReet"))
    assert any("greet.pc" in p for p in verify_deployment(new)["problems"])


def test_rewrite_bytes_alone() -> None:
    """The pure rewrite: text takes the new prefixes literally, the longest old prefix first; binary
    data keeps its length (padded), a padded install root moving to one of the same length even when
    the root around it grows; a longer prefix in binary data and a shebang over 127 bytes refused."""
    root, install = "/b/root", "/b/root/opt/spack/__spack_path_placeholder__/__spack"
    new_root = "/bb/longer-root"
    new_install = (new_root + "/opt/spack/__spack_path_placeholder__")[:len(install)]
    assert len(new_install) == len(install)
    rw = rewrite.Rewrite([(root, new_root), (install, new_install)])
    text = f"#!{root}/bin/sbang\nexec {install}/x/bin/y \\g<0> {root}2\n".encode()
    expected = f"#!{new_root}/bin/sbang\nexec {new_install}/x/bin/y \\g<0> {root}2\n".encode()
    assert rewrite.rewrite_bytes(text, rw, "t") == expected
    binary = b"\0" + f"{install}/x/lib\0".encode()
    assert rewrite.rewrite_bytes(binary, rw, "b") == b"\0" + f"{new_install}/x/lib\0".encode()
    with pytest.raises(BundleError, match=f"b: compiled-in path {root} cannot grow"):
        rewrite.rewrite_bytes(b"\0" + f"{root}/share\0".encode(), rw, "b")
    shorter = rewrite.Rewrite([(install, "/n")])
    assert rewrite.rewrite_bytes(f"\0{install}/lib\0".encode(), shorter, "b") == \
        b"\0" + b"/" * (len(install) - 2) + b"/n/lib\0"
    with pytest.raises(BundleError, match="shebang is .* over the kernel's 127"):
        rewrite.rewrite_bytes(f"#!{root}/bin/x\n".encode(), rewrite.Rewrite([(root, "/" + "l" * 130)]), "s")


def test_pack_records_the_files_that_hold_the_root_and_relocation_reads_only_those(tmp_path: Path) -> None:
    old = tmp_path / "long-build-prefix" / "root"
    build_tree(old)
    m = scan.build(old)
    hello = manifest.by_key(m)[key("hello")]
    assert hello["prefixed"] == ["bin/hello", "bin/hello-wrapper"]  # the RPATH and datadir, the script
    assert manifest.by_key(m)[key("libgreet")]["prefixed"] == ["lib/pkgconfig/greet.pc"]
    assert manifest.by_key(m)[key("plain")]["prefixed"] == []
    hello["prefixed"] = ["bin/hello"]  # a manifest that does not list the script: it is left as it was
    changed = rewrite.relocate_store_path(old / key("hello"), hello, [(str(old), str(tmp_path / "n"))],
                                           rewrite.patchelf_command())
    assert sorted(changed) == ["bin/hello"]
    assert str(old) in (old / key("hello") / "bin/hello-wrapper").read_text()
