"""spackenv.lock: two locks are the same solve when roots and concrete spec hashes agree."""

from __future__ import annotations

import json
import subprocess
import sys

from spackenv import lock

from .test_spack_env import LOCK, REPO


def committed() -> dict:
    return json.loads(LOCK.read_text())


def test_metadata_and_order_do_not_make_a_different_solve():
    old = committed()
    new = json.loads(json.dumps(old))
    new["spack"] = {"version": "1.0.2", "type": "git", "commit": "5efd8ee"}
    new["roots"].reverse()
    new["concrete_specs"] = dict(reversed(list(new["concrete_specs"].items())))
    assert lock.differences(old, new) == []


def test_a_changed_root_hash_is_a_different_solve():
    old = committed()
    new = json.loads(json.dumps(old))
    root = new["roots"][0]
    spec = new["concrete_specs"].pop(root["hash"])
    old_hash, root["hash"] = root["hash"], "x" * 32
    new["concrete_specs"][root["hash"]] = spec
    assert lock.differences(old, new) == [
        f"changed {spec['name']}@{spec['version']} /{old_hash[:7]} -> /xxxxxxx (root): hash only"]


def node(data: dict, name: str) -> tuple[str, dict]:
    return next((h, n) for h, n in data["concrete_specs"].items() if n["name"] == name)


def rehash(data: dict, old_hash: str, new_hash: str) -> None:
    """Move a node to a new hash, and every reference to it (what a re-solve does)."""
    data["concrete_specs"][new_hash] = data["concrete_specs"].pop(old_hash)
    for n in data["concrete_specs"].values():
        for dep in n.get("dependencies", []):
            if dep["hash"] == old_hash:
                dep["hash"] = new_hash
    for r in data["roots"]:
        if r["hash"] == old_hash:
            r["hash"] = new_hash


def test_an_edited_external_is_named_with_what_changed_and_who_depends_on_it():
    old = committed()
    new = json.loads(json.dumps(old))
    slurm_hash, slurm = node(new, "slurm")
    slurm["version"] = "23.02.7"
    slurm["external"]["path"] = "/opt/slurm"
    rehash(new, slurm_hash, "s" * 32)
    ompi_hash, _ = node(new, "openmpi")
    rehash(new, ompi_hash, "o" * 32)
    diff = lock.differences(old, new)
    assert f"changed slurm@22.05.8 /{slurm_hash[:7]} -> @23.02.7 /sssssss: version 22.05.8 -> 23.02.7; " \
           "external path /usr -> /opt/slurm" in diff
    assert f"changed openmpi@5.0.8 /{ompi_hash[:7]} -> /ooooooo (root): dependencies slurm" in diff
    assert len(diff) == 2


def test_a_target_change_is_named():
    old = committed()
    new = json.loads(json.dumps(old))
    h, n = node(new, "openmpi")
    n["arch"]["target"] = "x86_64_v2"
    rehash(new, h, "t" * 32)
    assert lock.differences(old, new) == [f"changed openmpi@5.0.8 /{h[:7]} -> /ttttttt (root): "
                                          "target x86_64_v3 -> x86_64_v2"]


def test_roots_and_nodes_added_and_removed():
    old = committed()
    new = json.loads(json.dumps(old))
    gone = new["roots"].pop()
    new["concrete_specs"].pop(gone["hash"])
    new["roots"].append({"spec": "zlib-ng@2.2.4", "hash": "z" * 32})
    new["concrete_specs"]["z" * 32] = {"name": "zlib-ng", "version": "2.2.4"}
    spec = old["concrete_specs"][gone["hash"]]
    assert lock.differences(old, new) == [
        f"root {gone['spec']} removed", "root zlib-ng@2.2.4 added",
        f"removed {spec['name']}@{spec['version']} /{gone['hash'][:7]}", "added zlib-ng@2.2.4 /zzzzzzz"]


def test_cli_exit_status(tmp_path):
    other = tmp_path / "other.lock"
    data = committed()
    data["roots"] = data["roots"][1:]
    other.write_text(json.dumps(data))
    run = [sys.executable, "-m", "spackenv.lock", "same"]
    assert subprocess.run([*run, str(LOCK), str(LOCK)], cwd=REPO).returncode == 0
    out = subprocess.run([*run, str(LOCK), str(other)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 1 and "removed" in out.stdout
    bad = subprocess.run([*run, str(LOCK), str(tmp_path / "missing")], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
