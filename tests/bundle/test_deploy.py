"""deploy: executables run after a redeploy, incremental writes, refusals leave the target untouched,
a killed redeploy leaves the previous deployment working, one redeploy at a time, disk full."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from bundle.deploying import swap
from bundle.deploying.redeploy import redeploy
from bundle.deploying.verify import verify_deployment
from bundle.errors import BundleError
from bundle.reading import reader
from tests.bundle.conftest import ARCH, PROJECT, Built, build_tree, key, pack, remove_store
from tests.bundle.test_archive import CASES, _bad, craft, members_of


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ROOT with its content hash or link target (the .bundle lock file aside)."""
    out = {}
    for dirpath, dirs, names in os.walk(root):
        for n in dirs + names:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "->" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def run(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout.strip()


def test_redeploy_then_executables_run(built: Built, target: Path) -> None:
    result = redeploy(built.bundle)
    assert result.target == str(target) and len(result.written_paths) == 4
    hello = target / key("hello")
    assert run(hello / "bin/hello") == "hello from libgreet"  # RPATH into the sibling store path
    assert run(hello / "bin/hello-wrapper") == "hello from libgreet"  # shebang script
    assert run(target / key("pytool") / "bin/pytool") == "pytool ok"
    assert (target / key("libgreet") / "lib/libgreet.so").resolve().name == "libgreet.so.1.0"
    assert verify_deployment(target)["problems"] == []
    env = subprocess.run(["bash", "-c", f". {result.snippet} && echo $SPACK_ROOT $SPACK_SETUP_DONE && hello"],
                         capture_output=True, text=True)
    # Spack itself (share/spack) is not in the bundle, so setup-env.sh is sourced only where Spack is installed
    assert env.stdout.split("\n")[0] == str(target) and "hello from libgreet" in env.stdout


def test_second_redeploy_writes_nothing(built: Built, target: Path) -> None:
    redeploy(built.bundle)
    before = {p: os.lstat(p).st_ino for p in target.rglob("*")}
    again = redeploy(built.bundle)
    assert again.written_paths == [] and again.written_bytes == 0 and not again.metadata_written
    assert {p: os.lstat(p).st_ino for p in target.rglob("*")} == before


def test_one_changed_package_writes_only_that_package(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root")
    one = pack(root, tmp_path / "b1" / "env")
    (root / key("hello") / "share/doc/README").write_text("a new release of the docs\n")
    two = pack(root, tmp_path / "b2" / "env")
    remove_store(root)
    redeploy(one)
    lib_inode = os.lstat(root / key("libgreet") / "lib/libgreet.so.1.0").st_ino
    result = redeploy(two)
    assert result.written_paths == [key("hello")]
    hello_bytes = sum(p.stat().st_size for p in (root / key("hello")).rglob("*") if p.is_file() and not p.is_symlink())
    assert result.written_bytes == hello_bytes
    assert os.lstat(root / key("libgreet") / "lib/libgreet.so.1.0").st_ino == lib_inode
    assert (root / key("hello") / "share/doc/README").read_text() == "a new release of the docs\n"
    assert run(root / key("hello") / "bin/hello") == "hello from libgreet"
    assert verify_deployment(root)["problems"] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_bundle_leaves_target_untouched(built: Built, target: Path, tmp_path: Path, case: str) -> None:
    redeploy(built.bundle)
    shutil.rmtree(target / key("hello"))  # so the bad bundle has something to write
    before = snapshot(target)
    with pytest.raises(BundleError):
        redeploy(_bad(built, case, tmp_path))
    assert snapshot(target) == before


def test_other_prefix_refused(built: Built, target: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="needs --relocate"):
        redeploy(built.bundle, tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


def test_tampered_deployment_fails_verify(built: Built, target: Path) -> None:
    redeploy(built.bundle)
    (target / key("hello") / "share/doc/README").write_text("hello's documentatioN\n")
    (target / key("plain") / "etc/stray").write_text("x")
    problems = verify_deployment(target)["problems"]
    assert any("README: sha256 differs" in p for p in problems) and any("stray: not in the manifest" in p
                                                                         for p in problems)


def _redeploy_cmd(bundle: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bundle", "redeploy", "--quiet", str(bundle), *extra]


def test_killed_redeploy_leaves_previous_deployment_working(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root", greeting="old")
    one = pack(root, tmp_path / "b1" / "env")
    remove_store(root)
    build_tree(root, greeting="new")  # same store paths, new contents
    with open(root / key("hello") / "share/big", "wb") as f:  # makes staging take a while
        f.truncate(600 << 20)
    two = pack(root, tmp_path / "b2" / "env")
    remove_store(root)
    redeploy(one)
    assert run(root / key("hello") / "bin/hello") == "old from libgreet"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    proc = subprocess.Popen(_redeploy_cmd(two), cwd=PROJECT, env=env)
    deadline = time.monotonic() + 30
    while not any(p.is_dir() and any(p.iterdir()) for p in (root / ARCH).glob(".bundle-staging-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "redeploy ended before staging was seen"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run(root / key("hello") / "bin/hello") == "old from libgreet"
    assert verify_deployment(root)["problems"] == []
    subprocess.run(_redeploy_cmd(two), cwd=PROJECT, env=env, check=True)
    assert not list((root / ARCH).glob(".bundle-staging-*"))
    assert verify_deployment(root, hashes=False)["problems"] == []
    assert (root / key("hello") / "share/big").stat().st_size == 600 << 20
    assert run(root / key("hello") / "bin/hello") == "new from libgreet"


def test_concurrent_redeploy_refused_or_waits(built: Built, target: Path) -> None:
    (target / ".bundle").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    with open(target / ".bundle" / "lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        refused = subprocess.run(_redeploy_cmd(built.bundle), cwd=PROJECT, env=env, capture_output=True, text=True)
        assert refused.returncode == 1 and "another redeploy holds the lock" in refused.stderr
        assert not (target / "opt").exists()
        waiting = subprocess.Popen(_redeploy_cmd(built.bundle, "--wait"), cwd=PROJECT, env=env)
        time.sleep(0.5)
        assert waiting.poll() is None and not (target / "opt").exists()
        fcntl.flock(held, fcntl.LOCK_UN)
    assert waiting.wait(timeout=30) == 0
    assert verify_deployment(target)["problems"] == []


def test_disk_full_clean_error_target_untouched(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount privileges)")
    try:
        root = build_tree(small / "root")
        one = pack(root, tmp_path / "b1" / "env")
        (root / key("hello") / "share/big").write_bytes(os.urandom(4 << 20))
        two = pack(root, tmp_path / "b2" / "env")
        remove_store(root)
        redeploy(one)
        filler = small / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * (5 << 20))  # leaves less room than the 4 MB file needs
        before = snapshot(root)
        with pytest.raises(BundleError, match="disk full"):
            redeploy(two)
        assert snapshot(root) == before
        assert run(root / key("hello") / "bin/hello") == "hello from libgreet"
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_profile_only_when_asked(built: Built, target: Path, tmp_path: Path) -> None:
    profile = tmp_path / "bashrc"
    profile.write_text("# mine\n")
    redeploy(built.bundle)
    assert profile.read_text() == "# mine\n"
    redeploy(built.bundle, profile=profile)
    redeploy(built.bundle, profile=profile)
    lines = profile.read_text().splitlines()
    assert lines[0] == "# mine" and len(lines) == 2 and "env.sh" in lines[1]


def _with_data(members: list, name: str, data: bytes) -> list:
    return [(i, data if i.name == name else d) for i, d in members]


def test_damaged_large_file_refused_after_streaming_target_untouched(tmp_path: Path) -> None:
    """A file over staging.SMALL streams to disk while it is hashed: its mismatch still stops the deploy."""
    root = build_tree(tmp_path / "root")
    big = root / key("hello") / "share/big.dat"
    big.write_bytes(os.urandom(3 << 20))
    good = pack(root, tmp_path / "b1" / "env")
    name = f"{key('hello')}/share/big.dat"
    data = bytearray(big.read_bytes())
    data[-10] ^= 1  # damage near the end: most of the file is already on disk when the hash is known
    m = reader.read(good, manifest_only=True)[0]
    bad = craft(tmp_path, m, _with_data(members_of(good), name, bytes(data)))
    remove_store(root)
    redeploy(good)
    shutil.rmtree(root / key("hello"))
    before = snapshot(root)
    with pytest.raises(BundleError, match="big.dat: sha256 mismatch"):
        redeploy(bad)
    assert snapshot(root) == before and not list((root / ARCH).glob(".bundle-staging-*"))


def test_damage_in_a_store_path_not_written_is_still_refused(built: Built, target: Path, tmp_path: Path) -> None:
    """Store paths already deployed are skipped, not unchecked: every file of the bundle is verified."""
    redeploy(built.bundle)
    shutil.rmtree(target / key("hello"))
    lib = f"{key('libgreet')}/include/greet.h"
    bad = craft(tmp_path, built.manifest, _with_data(members_of(built.bundle), lib, b"const char *greet(void)!\n"))
    before = snapshot(target)
    with pytest.raises(BundleError, match="greet.h: sha256 mismatch"):
        redeploy(bad)
    assert snapshot(target) == before


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_modes_exact_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """Files are created with their final mode (no chmod), read-only directories get theirs at the end."""
    root = build_tree(tmp_path / "root")
    plain = root / key("plain")
    modes = {"etc/private": 0o600, "etc/tool": 0o700, "etc/readonly": 0o444, "etc/empty": 0o640}
    for rel, mode in modes.items():
        (plain / rel).write_bytes(b"" if rel == "etc/empty" else rel.encode())
        (plain / rel).chmod(mode)
    (plain / "etc/big").write_bytes(os.urandom(2 << 20))
    (plain / "ro").mkdir()
    (plain / "ro/inside").write_text("in a read-only directory\n")
    (plain / "ro").chmod(0o555)
    bundle = pack(root, tmp_path / "b" / "env")
    (plain / "ro").chmod(0o755)
    remove_store(root)
    old = os.umask(umask)
    try:
        redeploy(bundle)
    finally:
        os.umask(old)
    assert verify_deployment(root)["problems"] == []
    for rel, mode in {**modes, "ro": 0o555}.items():
        assert (plain / rel).stat().st_mode & 0o7777 == mode, rel
    assert (plain / "ro/inside").read_text() == "in a read-only directory\n"
    assert run(root / key("hello") / "bin/hello") == "hello from libgreet"
    (plain / "ro").chmod(0o755)


def test_killed_among_the_renames_next_run_of_either_bundle_completes(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill right after the first store path was swapped in: the next run, even of the previous bundle,
    writes that store path again instead of trusting a recorded digest that no longer describes it."""
    root = build_tree(tmp_path / "root", greeting="old")
    one = pack(root, tmp_path / "b1" / "env")
    remove_store(root)
    build_tree(root, greeting="new")
    (root / key("plain") / "etc/config").write_text("new config\n")  # a second store path changes
    two = pack(root, tmp_path / "b2" / "env")
    remove_store(root)
    redeploy(one)
    real_exchange, real_write, swapped = swap.exchange, swap.write_atomic, []

    def exchange(a: Path, b: Path) -> None:
        if swapped:
            raise SystemExit("killed")  # as a SIGKILL would: nothing after this point runs
        real_exchange(a, b)
        swapped.append(b)

    def write_atomic(path: Path, data: bytes) -> None:
        if swapped:
            raise SystemExit("killed")
        real_write(path, data)

    monkeypatch.setattr(swap, "exchange", exchange)
    monkeypatch.setattr(swap, "write_atomic", write_atomic)
    with pytest.raises(SystemExit):
        redeploy(two)
    monkeypatch.undo()
    assert swapped == [root / key("libgreet")]
    assert run(root / key("hello") / "bin/hello") == "new from libgreet"
    result = redeploy(one)  # back to the previous bundle: the swapped-in path must not be skipped
    assert key("libgreet") in result.written_paths
    assert run(root / key("hello") / "bin/hello") == "old from libgreet"
    assert verify_deployment(root)["problems"] == []


def test_file_under_a_symlink_refused_before_anything_is_written(built: Built, target: Path, tmp_path: Path) -> None:
    """A symlink may point into its own store path's final place, so a file listed beneath it would be
    written through it into the live deployment while staging: the manifest is refused instead."""
    redeploy(built.bundle)
    hello = key("hello")
    m = {**built.manifest, "paths": [dict(sp) for sp in built.manifest["paths"]]}
    sp = next(sp for sp in m["paths"] if sp["key"] == hello)
    link = {"path": "bin/through", "type": "link", "target": str(target / hello / "share")}
    evil = {"path": "bin/through/evil", "type": "file", "mode": 0o644, "size": 5,
            "sha256": hashlib.sha256(b"evil\n").hexdigest()}
    sp["files"] = sorted(sp["files"] + [link, evil], key=lambda e: e["path"])
    members = members_of(built.bundle)
    at = next(i for i, (info, _) in enumerate(members) if info.name == f"{hello}/bin/hello-wrapper") + 1
    link_info = tarfile.TarInfo(f"{hello}/bin/through")
    link_info.type, link_info.linkname, link_info.mode = tarfile.SYMTYPE, link["target"], 0o777
    evil_info = tarfile.TarInfo(f"{hello}/bin/through/evil")
    evil_info.size, evil_info.mode = 5, 0o644
    bad = craft(tmp_path, m, members[:at] + [(link_info, None), (evil_info, b"evil\n")] + members[at:])
    (target / ".bundle" / "state.json").unlink()  # so every store path is staged again
    before = snapshot(target)
    with pytest.raises(BundleError, match="its parent bin/through is not a directory of the manifest"):
        redeploy(bad)
    assert snapshot(target) == before and not (target / hello / "share" / "evil").exists()
