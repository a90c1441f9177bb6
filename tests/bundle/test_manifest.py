"""manifest: store paths found, deps from spec.json, per-file digests, a hash independent of mtimes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from bundle.errors import BundleError
from bundle.format import manifest
from bundle.packing import scan
from tests.bundle.conftest import ARCH, HASHES, build_tree, key


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tree(tmp_path_factory.mktemp("m") / "root")


def test_store_paths_found_by_spec_json_and_by_name(tree: Path) -> None:
    m = scan.build(tree)
    assert [sp["key"] for sp in m["paths"]] == sorted(key(n) for n in HASHES)
    assert m["root"] == str(tree) and m["spack_root"] is True
    assert m["lock"] == (tree / "spack.lock").read_text()
    hello = manifest.by_key(m)[key("hello")]
    assert hello["deps"] == [HASHES["libgreet"]] and hello["name"] == "hello"
    plain = manifest.by_key(m)[key("plain")]  # no .spack/spec.json: name pattern only
    assert (plain["name"], plain["version"], plain["hash"]) == ("plain", "1.0", HASHES["plain"])


def test_files_links_and_digests_match_the_tree(tree: Path) -> None:
    lib = manifest.by_key(scan.build(tree))[key("libgreet")]
    files = {e["path"]: e for e in lib["files"]}
    so = files["lib/libgreet.so.1.0"]
    data = (tree / key("libgreet") / "lib/libgreet.so.1.0").read_bytes()
    assert so["sha256"] == hashlib.sha256(data).hexdigest() and so["size"] == len(data)
    assert so["mode"] == 0o755
    assert files["lib/libgreet.so.1"] == {"path": "lib/libgreet.so.1", "type": "link", "target": "libgreet.so.1.0"}
    assert files["lib/libgreet.so"]["target"] == str(tree / key("libgreet") / "lib/libgreet.so.1")
    assert files["lib/pkgconfig"]["type"] == "dir"


def test_hash_ignores_mtimes_but_not_contents(tree: Path) -> None:
    before = manifest.manifest_hash(scan.build(tree))
    for dirpath, _, names in os.walk(tree):
        for n in names:
            os.utime(os.path.join(dirpath, n), (1_000_000, 1_000_000), follow_symlinks=False)
    assert manifest.manifest_hash(scan.build(tree)) == before
    doc = tree / key("hello") / "share/doc/README"
    doc.write_text("changed\n")
    try:
        assert manifest.manifest_hash(scan.build(tree)) != before
    finally:
        doc.write_text("hello's documentation\n")


def test_store_option_and_diff(tree: Path) -> None:
    whole = scan.build(tree)
    inside = scan.build(tree, store=tree / ARCH)  # a store under ROOT: keys stay relative to ROOT
    assert [sp["key"] for sp in inside["paths"]] == [sp["key"] for sp in whole["paths"]]
    assert inside["spack_root"] is False
    bare = scan.build(tree / ARCH)  # a bare store directory is its own root
    assert [sp["key"] for sp in bare["paths"]] == [sp["key"][len(ARCH) + 1:] for sp in whole["paths"]]
    fewer = {**whole, "paths": whole["paths"][1:]}
    d = manifest.diff(fewer, whole)
    assert [e["key"] for e in d["added"]] == [whole["paths"][0]["key"]] and not d["removed"] and not d["changed"]


def test_escaping_symlink_and_device_refused(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root")
    evil = root / key("hello") / "bin/evil"
    os.symlink("../../../../../../etc/passwd", evil)
    with pytest.raises(BundleError, match="points outside its store path"):
        scan.build(root)
    evil.unlink()
    os.symlink(str(root / key("libgreet") / "lib"), evil)  # absolute, into a sibling store path
    with pytest.raises(BundleError, match="points outside its store path"):
        scan.build(root)
    evil.unlink()
    os.mkfifo(root / key("hello") / "bin/fifo")
    with pytest.raises(BundleError, match="not a file, directory or symlink"):
        scan.build(root)


def test_empty_store_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no store paths"):
        scan.build(tmp_path)
