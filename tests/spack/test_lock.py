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
    root["hash"] = "x" * 32
    new["concrete_specs"][root["hash"]] = spec
    diff = lock.differences(old, new)
    assert f"root {root['spec']} /xxxxxxx added" in diff and "2 concrete specs differ" in diff


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
