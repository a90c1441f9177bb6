"""The Python API (bundle/api.py): bundle.pack, redeploy, verify and diff as a Python user calls them, with
the CLI's options as keyword arguments; bad input is one BundleError line, and nothing is written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import bundle
from tests.bundle.conftest import Built, build_tree, key, remove_store


class Recorder:
    """A Progress that keeps what it was told."""

    def __init__(self, label: str, log: list[tuple[str, str, int]]) -> None:
        self.label, self.log = label, log

    def plan(self, files: int, nbytes: int) -> None:
        self.log.append((self.label, "plan", files))

    def add(self, nbytes: int) -> None:
        self.log.append((self.label, "add", nbytes))

    def sent(self, nbytes: int) -> None:
        self.log.append((self.label, "sent", nbytes))

    def finish(self) -> None:
        self.log.append((self.label, "finish", 0))


def test_pack_redeploy_verify_diff_in_python(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root")
    log: list[tuple[str, str, int]] = []
    packed = bundle.pack(root, f"{tmp_path}/out/", compression="gzip", level=1,
                         progress=lambda label: Recorder(label, log))
    path = Path(packed["bundle"])
    assert path.parent == tmp_path / "out" and path.name.endswith(".tar.gz") and packed["store_paths"] == 4
    assert packed["manifest"][:32] in path.name and packed["compressed_bytes"] == path.stat().st_size
    assert {label for label, _, _ in log} == {"hash", "pack"} and ("pack", "plan", packed["files"]) in log
    (root / key("hello") / "share/doc/README").write_text("v2\n")
    second = bundle.pack(root, f"{tmp_path}/out2/", compression="gzip")["bundle"]
    remove_store(root)
    chosen: list[Path] = []
    deployed = bundle.redeploy(path, on_target=chosen.append)
    assert chosen == [root] and deployed["target"] == str(root) and len(deployed["written_paths"]) == 4
    hello = subprocess.run([str(root / key("hello") / "bin/hello")], capture_output=True, text=True, check=True)
    assert hello.stdout == "hello from libgreet\n"
    assert bundle.verify(root)["problems"] == [] and bundle.verify(path)["store_paths"] == 4
    assert bundle.diff(root, second)["changed"][0]["key"] == key("hello")
    assert bundle.diff(path, path) == {"added": [], "removed": [], "changed": []}


def test_redeploy_relocates_with_keywords(tmp_path: Path) -> None:
    old, moved = tmp_path / "a-long-build-root", tmp_path / "short"
    build_tree(old)
    packed = bundle.pack(old, f"{tmp_path}/out/")["bundle"]
    remove_store(old)
    with pytest.raises(bundle.BundleError, match=r"needs --relocate$"):
        bundle.redeploy(packed, prefix=moved)
    result = bundle.redeploy(packed, prefix=moved, relocate=True)
    assert result["target"] == str(moved) and result["relocated_files"] >= 4
    hello = subprocess.run([str(moved / key("hello") / "bin/hello")], capture_output=True, text=True, check=True)
    assert hello.stdout == "hello from libgreet\n"
    assert bundle.verify(moved)["store_paths"] == 4


def test_verify_names_the_first_problem(built: Built, target: Path) -> None:
    bundle.redeploy(built.bundle)
    (target / key("hello") / "share/doc/README").write_text("tampered\n")
    with pytest.raises(bundle.BundleError, match=rf"^{target}: 1 problems, first: {key('hello')}/share/doc/README: "):
        bundle.verify(target)


@pytest.mark.parametrize(("call", "message"), [
    (lambda t: bundle.pack(t / "nowhere", t / "out/"), r"nowhere: no such directory$"),
    (lambda t: bundle.pack(t, t / "out/", compression="xz"), r"^compression 'xz': expected one of gzip, zstd$"),
    (lambda t: bundle.pack(t, t / "out/", level=30), r"^level 30: zstd takes 1 to 22$"),
    (lambda t: bundle.pack(t, t / "out/", compression="gzip", level=True), r"^level True: gzip takes 1 to 9$"),
    (lambda t: bundle.redeploy(t / "b.tar.zst", to="h:/p", prefix=t), r"^--to HOST:PREFIX names the target"),
    (lambda t: bundle.verify(t / "nothing"), r"nothing: no such bundle or deployment$"),
    (lambda t: bundle.diff(t, t), r": neither a bundle nor a deployment$"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, call, message: str) -> None:
    with pytest.raises(bundle.BundleError, match=message) as refused:
        call(tmp_path)
    assert "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_the_api_is_what_the_package_names() -> None:
    assert bundle.__all__ == ["BundleError", "diff", "pack", "redeploy", "verify"]
    with pytest.raises(AttributeError, match="no attribute 'packs'"):
        bundle.packs  # noqa: B018
