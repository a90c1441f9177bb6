"""A bundle Spack can use (issue 12, item 4), against a real Spack: the locked environment fake-installed,
packed with Spack itself, redeployed at its own prefix and relocated to a longer one, then `spack find`
and `spack load` there; and merged into a Spack root that already holds installs of its own."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bundle.deploying.redeploy import redeploy
from bundle.deploying.verify import verify_deployment
from bundle.packing import scan, writer
from tests.bundle.conftest import PROJECT, SpackStore

pytestmark = pytest.mark.spack


def lock_hashes() -> set[str]:
    return set(json.loads((PROJECT / "spack.lock").read_text())["concrete_specs"])


def found(store: SpackStore, root: Path, *specs: str) -> dict[str, str]:
    """hash -> prefix of what ROOT's Spack lists as installed."""
    out = store.spack(root, "find", "--format", "{hash} {prefix}", *specs)
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


def loaded_path(store: SpackStore, root: Path, spec: str) -> str:
    sh = store.spack(root, "load", "--sh", spec)
    return next(part for part in sh.split(";") if part.strip().startswith("export PATH=")).split("=", 1)[1]


def test_spack_finds_and_loads_a_redeployed_store_same_prefix_relocated_and_merged(spack_store: SpackStore,
                                                                                  tmp_path: Path) -> None:
    root = spack_store.root
    m = scan.build(root, with_spack=True)
    bundle = writer.write(m, tmp_path / "out" / "env")
    assert m["spack"]["install_root"].startswith("opt/spack/__spack_path_placeholder__")  # padded_length
    assert len(m["spack"]["installs"]) == len(lock_hashes())
    kinds = {sp["key"] for sp in m["paths"] if sp.get("kind") == "spack"}
    assert kinds == {"bin", "lib/spack", "etc/spack", "share/spack", "opt/spack/bin"}  # Spack itself, sbang
    assert not any("__pycache__" in e["path"] for sp in m["paths"] for e in sp["files"])
    aside = root.with_name("spack-root.built-by-spack")
    root.rename(aside)

    # 1. at the prefix it was built at, into an empty directory
    redeploy(bundle)
    same = found(spack_store, root)
    assert set(same) == lock_hashes()
    assert loaded_path(spack_store, root, "openmpi").startswith(str(root / "opt/spack/__spack_path_placeholder__"))
    assert (root / "opt/spack/bin/sbang").is_file()

    # 2. relocated to a longer prefix: the padded install root is rebuilt there, to the same length
    new = tmp_path / "relocated" / "spack"
    assert len(str(root)) < len(str(new)) and len(str(new / "opt/spack")) < 127  # longer, and still padded
    redeploy(bundle, new, relocate=True)
    moved = found(spack_store, new)
    assert set(moved) == lock_hashes()
    inside = [p for p in moved.values() if p.startswith(str(tmp_path))]
    assert inside and all(p.startswith(str(new / "opt/spack/__spack_path_placeholder__")) for p in inside)
    assert all(os.path.isdir(p) for p in inside)
    for spec in ("openmpi", "hwloc"):
        path = loaded_path(spack_store, new, spec)
        assert path.startswith(str(new)) and str(root) not in path
    assert verify_deployment(new)["problems"] == []

    # 3. merged: a bundle without hwloc, into a Spack root whose own Spack installed all but util-macros
    spack_store.spack(root, "uninstall", "-y", "-f", "hwloc")
    m2 = scan.build(root, with_spack=True)
    smaller = writer.write(m2, tmp_path / "out" / "smaller")
    shutil.rmtree(root)
    aside.rename(root)
    theirs = found(spack_store, root, "hwloc")
    ours = found(spack_store, root, "util-macros")
    spack_store.spack(root, "uninstall", "-y", "-f", "util-macros")
    assert set(found(spack_store, root)) == lock_hashes() - set(ours)
    result = redeploy(smaller, root)
    assert result.written_paths == [next(iter(ours.values()))[len(str(root)) + 1:]]  # theirs kept, ours added
    assert result.spack_db_written and len(result.kept_paths) == len(m2["paths"]) - 1
    assert set(found(spack_store, root)) == lock_hashes()
    assert found(spack_store, root, "hwloc") == theirs and found(spack_store, root, "util-macros") == ours
    assert loaded_path(spack_store, root, "hwloc").startswith(str(root))
