"""spackdb and placement, alone: Spack's padding rule, the database merge and path rewrite (pure)."""

from __future__ import annotations

import pytest

from bundle.deploying.plan import plan
from bundle.errors import BundleError
from bundle.relocation.layout import layout
from bundle.spack import database as spackdb

# What Spack 1.0.2's spack.util.path.add_padding(root, 128) returns (computed with the real Spack).
SPACK_PADDED = {
    "/a": "/a/" + "/".join(["__spack_path_placeholder__"] * 4) + "/__spack_path_plac",
    "/tmp/x/opt/spack": "/tmp/x/opt/spack/" + "/".join(["__spack_path_placeholder__"] * 4) + "/__s",
    "/" + "y" * 120: "/" + "y" * 120 + "/__spac",
    "/" + "y" * 125: "/" + "y" * 125 + "/_",
}


@pytest.mark.parametrize("root", sorted(SPACK_PADDED))
def test_padding_as_spack_computes_it_and_back(root: str) -> None:
    padded = spackdb.padded_root(root, 128)
    assert padded == SPACK_PADDED[root] and len(padded) == 128
    assert spackdb.unpadded(padded) == root


def test_new_install_root_keeps_the_padded_length() -> None:
    old = spackdb.padded_root("/build/spack/opt/spack", 128)
    new = spackdb.new_install_root("/build/spack", old, "/site/project/a-longer-prefix/spack")
    assert new == spackdb.padded_root("/site/project/a-longer-prefix/spack/opt/spack", 128) and len(new) == 128
    assert spackdb.new_install_root("/b", "/b/opt/spack", "/c/d") == "/c/d/opt/spack"  # not padded: moved as is


def _rec(path: str, deps: tuple[str, ...] = (), ref: int = 0, deprecated: str | None = None) -> dict:
    return {"path": path, "ref_count": ref, "installed": True, "deprecated_for": deprecated,
            "spec": {"name": path.rsplit("/", 1)[-1], "dependencies": [{"name": d, "hash": d} for d in deps]}}


def _db(installs: dict) -> dict:
    return {"database": {"version": "8", "installs": installs}}


def test_merge_keeps_theirs_replaces_same_hash_and_counts_again() -> None:
    theirs = _db({"a": _rec("/t/a", ref=7), "b": _rec("/t/old-b"), "old": _rec("/t/old", deprecated="b")})
    ours = {"b": _rec("/t/b", deps=("a",)), "c": _rec("/t/c", deps=("a", "b", "zz"))}
    merged = spackdb.merge(theirs, "8", ours)["database"]
    installs = merged["installs"]
    assert sorted(installs) == ["a", "b", "c", "old"] and merged["version"] == "8"
    assert installs["a"]["path"] == "/t/a" and installs["b"]["path"] == "/t/b"  # theirs kept, same hash ours
    assert {h: r["ref_count"] for h, r in installs.items()} == {"a": 2, "b": 2, "c": 0, "old": 0}
    assert theirs["database"]["installs"]["a"]["ref_count"] == 7  # the input is not changed


def test_merge_into_nothing_drops_pruned_and_refuses_another_version() -> None:
    assert spackdb.merge(None, "8", {"a": _rec("/t/a")})["database"]["installs"]["a"]["ref_count"] == 0
    pruned = spackdb.merge(_db({"a": _rec("/t/a"), "b": _rec("/t/b")}), "8", {}, dropped_paths=["/t/b"])
    assert list(pruned["database"]["installs"]) == ["a"]
    with pytest.raises(BundleError, match="version '7', the bundle's '8'"):
        spackdb.merge({"database": {"version": "7", "installs": {}}}, "8", {})
    for bad in ({}, {"database": {"version": 8, "installs": {}}}, _db({"a": {"path": 3, "spec": {}}}),
                _db({"a": {"path": "/x", "spec": {"dependencies": [{"name": "b"}]}}})):
        with pytest.raises(BundleError):
            spackdb.merge(bad, "8", {})


def test_select_and_rewrite_paths() -> None:
    installs = {"s": _rec("/r/opt/s"), "gone": _rec("/r/opt/gone"), "gcc": _rec("/usr")}
    chosen = spackdb.select(installs, "/r", ["/r/opt/s"])
    assert sorted(chosen) == ["gcc", "s"]  # externals travel, unpacked prefixes under the root do not
    moved = spackdb.rewrite_paths(chosen, {"/r/opt/s": "/n/opt/s"})
    assert moved["s"]["path"] == "/n/opt/s" and moved["gcc"] is chosen["gcc"] and chosen["s"]["path"] == "/r/opt/s"


def test_layout_moves_store_paths_below_a_rebuilt_padded_root() -> None:
    old_install = spackdb.padded_root("/b/spack/opt/spack", 128)
    m = {"spack": {"install_root": old_install[len("/b/spack/"):]}}
    key = f"{m['spack']['install_root']}/linux-x86_64_v3/zlib-1.3-{'a' * 32}"
    lay = layout(m, ("/b/spack", "/longer/spack"))
    new_install = spackdb.padded_root("/longer/spack/opt/spack", 128)
    assert lay.place(key) == f"{new_install[len('/longer/spack/'):]}/linux-x86_64_v3/zlib-1.3-{'a' * 32}"
    assert lay.pairs == ((old_install, new_install), ("/b/spack", "/longer/spack"))
    assert lay.place("opt/spack/bin") == "opt/spack/bin"
    assert layout(m, None).place(key) == key and layout({}, ("/b", "/c")).pairs == (("/b", "/c"),)


def test_plan_never_prunes_spack_itself() -> None:
    """A bundle packed without --with-spack leaves the Spack an earlier one deployed: not stale."""
    state = {"bin": "d1", "lib/spack": "d2", "opt/spack/bin": "d3", "opt/spack/x/zlib-1-" + "a" * 32: "d4"}
    steps = plan({"format": "bundle/1", "root": "/r", "spack_root": True, "lock": None, "paths": []}, state,
                 lambda key, sp: "absent")
    assert steps.stale == ["opt/spack/x/zlib-1-" + "a" * 32] and steps.todo == []
