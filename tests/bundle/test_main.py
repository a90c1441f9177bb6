"""The CLI and its thin scripts as users run them: one-line errors, --json, progress, diff."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.bundle.conftest import PROG, PROJECT, Built, build_tree, key, remove_store, run_bundle


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([f"scripts/{name}", *args], capture_output=True, text=True, cwd=PROJECT)  # as typed


def test_scripts_help() -> None:
    for name in ("pack.sh", "redeploy.sh", "bench-bundle.sh"):
        proc = script(name, "--help")
        assert proc.returncode == 0 and proc.stdout.startswith("usage: scripts/" + name)
    assert script("pack.sh").returncode == 2


def test_pack_redeploy_verify_diff_through_the_scripts(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root")
    packed = script("pack.sh", str(root), "-o", str(tmp_path / "out") + "/", "--json")
    assert packed.returncode == 0, packed.stderr
    info = json.loads(packed.stdout)
    bundle = Path(info["bundle"])
    assert bundle.parent == tmp_path / "out" and info["manifest"][:32] in bundle.name and info["store_paths"] == 4
    assert "files" in packed.stderr  # progress goes to stderr, the summary to stdout
    (root / key("hello") / "share/doc/README").write_text("v2\n")
    second = Path(json.loads(script("pack.sh", str(root), "-o", str(tmp_path / "out2") + "/", "--json",
                                    "--quiet").stdout)["bundle"])
    remove_store(root)
    deployed = script("redeploy.sh", str(bundle), "--json", "--quiet")
    assert deployed.returncode == 0 and deployed.stderr == ""
    assert len(json.loads(deployed.stdout)["written_paths"]) == 4
    assert "OK" in run_bundle("verify", str(root), check=True).stdout
    assert run_bundle("verify", str(bundle), "-q", check=True).stdout == ""  # quiet prints nothing
    diff = run_bundle("diff", str(root), str(second), check=True).stdout.strip().splitlines()
    assert diff == [f"~ {key('hello')}  {diff[0].split()[2]} -> {int(diff[0].split()[2]) - 19} bytes"]


def test_bad_input_is_one_line_without_traceback(built: Built, target: Path, tmp_path: Path) -> None:
    cases = [("pack", str(tmp_path / "missing"), "-o", str(tmp_path)),
             ("redeploy", str(tmp_path / "nothing.tar.zst")),
             ("redeploy", str(built.bundle), "--prefix", str(tmp_path / "other")),
             ("verify", str(tmp_path)),
             ("diff", str(built.bundle), str(tmp_path))]
    for args in cases:
        proc = run_bundle(*args)
        assert proc.returncode == 1, args
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{PROG}: ") and "Traceback" not in proc.stderr, proc.stderr


def test_pack_output_name_is_what_the_usage_says(tmp_path: Path) -> None:
    """-o DIR/NAME writes DIR/NAME-<hash>.tar.zst (the usage says so), and prints the path it wrote."""
    assert "-o DIR/[NAME]" in script("pack.sh", "--help").stdout
    root = build_tree(tmp_path / "root")
    packed = script("pack.sh", str(root), "-o", str(tmp_path / "a.bundle"))
    written = Path(packed.stdout.strip())
    assert packed.returncode == 0 and written.is_file() and written.parent == tmp_path
    assert written.name.startswith("a.bundle-") and written.name.endswith(".tar.zst")
    refused = script("pack.sh", str(root), "-o", str(tmp_path / "s") + "/", "--with-spack")
    assert refused.returncode == 1 and "--with-spack" in refused.stderr and "not a Spack root" in refused.stderr
