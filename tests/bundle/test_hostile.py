"""Hostile bundles and awkward prefixes (issue 13): each refused with one line and the target untouched,
or deployed correctly. Bundles are re-signed (named by their changed manifest's hash) so that only the
structural checks can catch them. One section per class of the issue."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from bundle.deploying import target as targets
from bundle.deploying.redeploy import redeploy
from bundle.deploying.verify import verify_deployment
from bundle.errors import BundleError
from bundle.format import manifest
from bundle.packing import scan, writer
from bundle.relocation import rewrite
from tests.bundle.conftest import (
    ARCH,
    PROG,
    PROJECT,
    Built,
    build_tree,
    key,
    pack,
    remove_store,
    run_bundle,
    tree_state,
)
from tests.bundle.test_archive import craft, members_of
from tests.bundle.test_deploy import run, snapshot

HELLO = key("hello")


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def _dir(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, None


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
    return info, None


def with_links(built: Built, links: dict[str, str]) -> tuple[dict, list]:
    """The built manifest and members, plus symlinks (path under HELLO -> target) in HELLO."""
    m = copy.deepcopy(built.manifest)
    sp = next(sp for sp in m["paths"] if sp["key"] == HELLO)
    sp["files"] = sorted(sp["files"] + [{"path": p, "type": "link", "target": t} for p, t in links.items()],
                         key=lambda e: e["path"])
    members = members_of(built.bundle)
    at = max(i for i, (info, _) in enumerate(members) if info.name.startswith(HELLO + "/")) + 1
    return m, members[:at] + [_link(f"{HELLO}/{p}", t) for p, t in links.items()] + members[at:]


def with_store_path(built: Built, store_key: str, spec: bool = True, alone: bool = False) -> tuple[dict, list]:
    """The built manifest and members (none when ALONE), plus a small store path at STORE_KEY (with
    .spack/spec.json when SPEC)."""
    m = copy.deepcopy(built.manifest)
    if alone:
        m["paths"] = []
    data = json.dumps({"spec": {"nodes": [{"name": "x", "version": "1", "hash": "e" * 32}]}}).encode()
    files = [{"path": "etc", "type": "dir", "mode": 0o755},
             {"path": "etc/evil", "type": "file", "mode": 0o644, "size": 5, "sha256": hashlib.sha256(b"evil\n")
              .hexdigest()}]
    members = [_dir(store_key), _dir(f"{store_key}/etc"), _file(f"{store_key}/etc/evil", b"evil\n")]
    if spec:
        files = [{"path": ".spack", "type": "dir", "mode": 0o755},
                 {"path": ".spack/spec.json", "type": "file", "mode": 0o644, "size": len(data),
                  "sha256": hashlib.sha256(data).hexdigest()}] + files
        members[1:1] = [_dir(f"{store_key}/.spack"), _file(f"{store_key}/.spack/spec.json", data)]
    m["paths"].append({"key": store_key, "name": "x", "version": "1", "hash": "e" * 32, "deps": [], "mode": 0o755,
                       "files": files})
    return m, ([] if alone else members_of(built.bundle)) + members


def refused_untouched(bundle: Path, target: Path, match: str, **kw: object) -> None:
    before = snapshot(target) if target.exists() else None
    with pytest.raises(BundleError, match=match) as err:
        redeploy(bundle, **kw)
    assert "\n" not in str(err.value)
    assert (snapshot(target) if target.exists() else None) == before


# --- 1. symlinks that leave their store path through other links (5 cases) ---

ESCAPES = {  # each lexically inside HELLO, really outside once the links met on the way are followed
    "balanced": {"share/doc/up": "../..", "share/doc/esc": "up/../../etc/passwd"},
    "two-hops": {"share/doc/up": "../..", "share/doc/b": "up/..", "share/doc/a": "b/x"},
    "absolute-through-link": {"share/doc/up": "../..", "share/doc/abs": "{hello}/share/doc/up/../x"},
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_link_escaping_through_links_refused_target_untouched(built: Built, target: Path, tmp_path: Path,
                                                              case: str) -> None:
    links = {p: t.format(hello=built.root / HELLO) for p, t in ESCAPES[case].items()}
    m, members = with_links(built, links)
    with pytest.raises(BundleError, match="points outside its store path"):
        manifest.check(m)
    redeploy(built.bundle)
    shutil.rmtree(target / HELLO)
    refused_untouched(craft(tmp_path, m, members), target, "points outside its store path")


def test_links_that_stay_inside_are_accepted(built: Built) -> None:
    m, _ = with_links(built, {"share/doc/up": "../..", "share/doc/in": "up/bin/hello", "share/doc/loop": "loop",
                              "share/doc/abs": str(built.root / HELLO / "share/doc/up/bin")})
    manifest.check(m)


def test_pack_refuses_a_tree_whose_link_escapes_through_a_link(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root")
    doc = root / HELLO / "share/doc"
    os.symlink("../..", doc / "up")
    os.symlink("up/../../etc/passwd", doc / "esc")
    proc = run_bundle("pack", str(root), "-o", str(tmp_path / "out") + "/")
    assert proc.returncode == 1 and "share/doc/esc: symlink to up/../../etc/passwd points outside" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_verify_flags_a_deployment_holding_such_a_link(built: Built, target: Path) -> None:
    """A deployment made before the check (its recorded manifest lists the link) no longer verifies."""
    redeploy(built.bundle)
    m, _ = with_links(built, ESCAPES["balanced"])
    for rel, link in ESCAPES["balanced"].items():
        os.symlink(link, target / HELLO / rel)
    (target / ".bundle" / "manifest.json").write_bytes(manifest.canonical(m))
    with pytest.raises(BundleError, match="points outside its store path"):
        verify_deployment(target)


# --- 2. store paths with names Spack never makes (6 cases) ---

NAMES = {
    ".": (".", True, "hidden component"),
    ".bundle": (".bundle", True, "hidden component"),
    "bin-no-spec": ("bin", False, "neither <name>-<version>-<hash> nor"),
    "bin-with-spec": ("bin", True, r"hold a part of Spack itself \(bin\), which the deployment owns"),
    "arch-dir": (ARCH, True, "exists at the target and was not deployed by this tool"),  # holds the others
    "inside-deployed": (f"{HELLO}/share/inner-1.0-{'f' * 32}", True, "would lie inside the deployed store path"),
}


@pytest.mark.parametrize("case", sorted(NAMES))
def test_store_path_names_spack_never_makes_refused(built: Built, target: Path, tmp_path: Path, case: str) -> None:
    store_key, spec, match = NAMES[case]
    redeploy(built.bundle)
    (target / "bin").mkdir()
    (target / "bin/spack").write_text("the target's own spack\n")
    m, members = with_store_path(built, store_key, spec, alone=case in ("arch-dir", "inside-deployed"))
    refused_untouched(craft(tmp_path, m, members), target, match)
    assert (target / "bin/spack").read_text() == "the target's own spack\n"


# --- 3. the bundle does not choose an unsafe root (4 cases) ---

def _rooted(built: Built, tmp_path: Path, root: str) -> Path:
    """The built bundle re-signed with another root (its absolute symlink left out: it names the old one)."""
    m = copy.deepcopy({**built.manifest, "root": root})
    for sp in m["paths"]:
        sp["files"] = [e for e in sp["files"] if not e.get("target", "").startswith("/")]
    members = [(i, d) for i, d in members_of(built.bundle) if not i.linkname.startswith("/")]
    return craft(tmp_path, m, members)


def test_relative_root_refused(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _rooted(built, tmp_path, "relative/root")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(BundleError, match="not an absolute"):
        redeploy(bundle)
    assert list(cwd.iterdir()) == []


def test_system_directory_root_refused(built: Built, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="system directory"):
        redeploy(_rooted(built, tmp_path, "/proc/bundle-test-root"))
    for root in ("/", "/usr", "/etc/spack", "/usr/lib/x", "/var", "/home"):
        with pytest.raises(BundleError, match="system directory"):
            targets.choose(root, None, False)
    assert targets.choose("/usr/local/spack", None, False)[0] == Path("/usr/local/spack")


def test_foreign_non_empty_root_needs_an_explicit_prefix(built: Built, target: Path) -> None:
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("someone else's directory\n")
    refused_untouched(built.bundle, target, "neither a deployment nor a Spack root; name it with --prefix")
    redeploy(built.bundle, target)  # named explicitly: deployed
    assert run(target / HELLO / "bin/hello") == "hello from libgreet"


def test_target_on_the_first_line_of_the_output(built: Built, target: Path) -> None:
    proc = run_bundle("redeploy", str(built.bundle), check=True)
    assert proc.stderr.splitlines()[0] == f"redeploy to {target}"


# --- 4. relocation: bytes, literal prefixes, refusals up front that leave no trace (10 cases) ---

def _build_packed(tmp_path: Path, old: Path) -> Path:
    build_tree(old)
    bundle = pack(old, tmp_path / "bundles" / "env")
    remove_store(old)
    return bundle


def test_multibyte_prefix_longer_in_bytes_refused_without_trace(tmp_path: Path) -> None:
    old = tmp_path / ("o" * 40) / "root"
    new = tmp_path / ("é" * 30) / "root"  # fewer characters than OLD, more bytes
    assert len(str(new)) <= len(str(old)) < len(os.fsencode(new))
    bundle = _build_packed(tmp_path, old)
    with pytest.raises(BundleError, match="cannot grow"):
        redeploy(bundle, new, relocate=True)
    assert not new.parent.exists()


def test_multibyte_prefix_that_fits_in_bytes_runs(tmp_path: Path) -> None:
    old = tmp_path / ("o" * 40) / "root"
    new = tmp_path / ("é" * 12) / "root"
    bundle = _build_packed(tmp_path, old)
    redeploy(bundle, new, relocate=True)
    hello = new / HELLO
    assert run(hello / "bin/hello") == "hello from libgreet"
    datadir = subprocess.run([hello / "bin/hello", "x"], capture_output=True, check=True).stdout.strip()
    assert os.path.normpath(datadir) == os.fsencode(hello / "share/doc")
    assert verify_deployment(new)["problems"] == []


@pytest.mark.parametrize("prefix", ["a\\tb", "sp ace", "g\\g<0>"])
def test_prefix_needing_quoting_refused_before_anything_is_created(tmp_path: Path, prefix: str) -> None:
    bundle = _build_packed(tmp_path, tmp_path / "o" / "root")
    new = tmp_path / prefix / "root"
    with pytest.raises(BundleError, match="would need quoting"):
        redeploy(bundle, new, relocate=True)
    assert not (tmp_path / prefix).exists()


def test_non_utf8_prefix_refused_before_anything_is_created(tmp_path: Path) -> None:
    bundle = _build_packed(tmp_path, tmp_path / "o" / "root")
    new = os.fsencode(tmp_path) + b"/bad\xff/root"
    proc = subprocess.run([sys.executable, "-m", "bundle", "redeploy", str(bundle), "--prefix", new, "--relocate"],
                          cwd=PROJECT, capture_output=True, env={**os.environ, "PYTHONPATH": str(PROJECT)})
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.startswith(f"{PROG}: --prefix") and "not valid UTF-8" in err
    assert err.count("\n") == 1 and not os.path.lexists(os.fsencode(tmp_path) + b"/bad\xff")


@pytest.mark.parametrize("new_tail", ["\\g<0>", "\\1", "\\\\", "\\t"])
def test_rewrite_takes_the_new_prefix_literally(tmp_path: Path, new_tail: str) -> None:
    """The rewrite itself (below redeploy's refusal of such prefixes): backslashes are not regex escapes."""
    old = tmp_path / ("o" * 40) / "root"
    build_tree(old)
    m = scan.build(old)
    new = str(tmp_path / new_tail / "root")
    hello = manifest.by_key(m)[HELLO]
    rewrite.relocate_store_path(old / HELLO, hello, [(str(old), new)], rewrite.patchelf_command())
    assert (old / HELLO / "bin/hello-wrapper").read_text() == f"#!/bin/sh\nexec {new}/{HELLO}/bin/hello \"$@\"\n"
    binary = (old / HELLO / "bin/hello").read_bytes()
    assert rewrite.padded(str(old), new) + f"/{HELLO}/share/doc".encode() in binary


# --- 5. bounded memory (2 cases) ---

@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_huge_declared_manifest_refused_before_reading(tmp_path: Path, compression: str) -> None:
    """2 GiB of declared (and present) manifest under a 1 GiB address-space limit: refused by size."""
    info = tarfile.TarInfo(writer.MANIFEST_NAME)
    info.size = 2 << 30
    path = tmp_path / writer.bundle_name("huge", "0" * 64, compression)
    with open(path, "wb") as raw:
        if compression == "zstd":
            out = zstandard.ZstdCompressor(level=1).stream_writer(raw)
        else:
            import gzip
            out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1)
        out.write(info.tobuf(tarfile.USTAR_FORMAT))
        zeros = bytes(16 << 20)
        for _ in range(128):
            out.write(zeros)
        out.close()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run([sys.executable, "-m", "bundle", "verify", str(path)], cwd=PROJECT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(PROJECT)}, preexec_fn=limit, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr[-500:]
    assert "MANIFEST.json declares 2147483648 bytes, over the limit" in proc.stderr


# --- 6. one line for every manifest shape (22 + 1 through the CLI) and filesystem failure (4) ---

def _shape(m: dict, case: str) -> object:
    sp, e = m["paths"][0], m["paths"][0]["files"][0]
    f = next(x for x in m["paths"][0]["files"] if x["type"] == "file")
    edits = {
        "not-an-object": lambda: [m], "paths-missing": lambda: m.pop("paths"),
        "paths-null": lambda: m.update(paths=None), "paths-object": lambda: m.update(paths={}),
        "store-path-string": lambda: m["paths"].append("x"), "key-int": lambda: sp.update(key=7),
        "key-null": lambda: sp.update(key=None), "files-missing": lambda: sp.pop("files"),
        "entry-string": lambda: sp["files"].append("x"), "path-int": lambda: e.update(path=3),
        "type-missing": lambda: e.pop("type"), "mode-string": lambda: e.update(mode="755"),
        "mode-bool": lambda: e.update(mode=True), "size-float": lambda: f.update(size=5.0),
        "size-string": lambda: f.update(size="5"), "size-negative": lambda: f.update(size=-1),
        "sha256-int": lambda: f.update(sha256=1), "sha256-short": lambda: f.update(sha256="ab"),
        "deps-string": lambda: sp.update(deps="abc"), "root-int": lambda: m.update(root=1),
        "root-missing": lambda: m.pop("root"), "lock-int": lambda: m.update(lock=1),
        "key-surrogate": lambda: sp.update(key=sp["key"] + "\udcff"),
        "path-surrogate": lambda: e.update(path=e["path"] + "\udcff"),
    }
    result = edits[case]()
    return result if case == "not-an-object" else m


SHAPES = ["not-an-object", "paths-missing", "paths-null", "paths-object", "store-path-string", "key-int",
          "files-missing", "entry-string", "path-int", "type-missing", "mode-string", "mode-bool", "size-float",
          "size-string", "size-negative", "sha256-int", "sha256-short", "deps-string", "root-int", "root-missing",
          "lock-int", "key-surrogate"]


def _bundle_with_manifest(tmp_path: Path, m: object) -> Path:
    data = json.dumps(m, sort_keys=True, separators=(",", ":")).encode()
    path = tmp_path / writer.bundle_name("shape", hashlib.sha256(data).hexdigest(), "zstd")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(writer.MANIFEST_NAME)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    return path


@pytest.mark.parametrize("case", SHAPES)
def test_every_manifest_shape_is_one_line(built: Built, target: Path, tmp_path: Path, case: str) -> None:
    bundle = _bundle_with_manifest(tmp_path, _shape(copy.deepcopy(built.manifest), case))
    with pytest.raises(BundleError) as err:
        redeploy(bundle)
    assert "\n" not in str(err.value) and not target.exists()


def test_manifest_shape_through_the_cli(built: Built, target: Path, tmp_path: Path) -> None:
    proc = run_bundle("redeploy", str(_bundle_with_manifest(tmp_path, _shape(copy.deepcopy(built.manifest),
                                                                              "size-float"))))
    assert proc.returncode == 1 and proc.stderr.startswith(f"{PROG}: manifest") and proc.stderr.count("\n") == 1


def test_non_utf8_names_in_pack_are_one_line(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root")
    bad = os.fsencode(root / HELLO / "share/doc") + b"/caf\xe9"
    with open(bad, "wb") as f:
        f.write(b"latin-1 name\n")
    proc = run_bundle("pack", str(root), "-o", str(tmp_path / "out") + "/")
    assert proc.returncode == 1 and "file name is not UTF-8" in proc.stderr and proc.stderr.count("\n") == 1
    os.unlink(bad)
    os.symlink(b"caf\xe9", os.fsencode(root / HELLO / "share/doc") + b"/link")
    proc = run_bundle("pack", str(root), "-o", str(tmp_path / "out") + "/")
    assert proc.returncode == 1 and "symlink target is not UTF-8" in proc.stderr and proc.stderr.count("\n") == 1


def test_a_file_where_the_state_directory_should_be(built: Built, target: Path) -> None:
    target.mkdir(parents=True)
    (target / ".bundle").write_text("not a directory\n")
    proc = run_bundle("redeploy", str(built.bundle), "--quiet", "--prefix", str(target))
    assert proc.returncode == 1 and ".bundle: exists and is not a directory" in proc.stderr
    assert proc.stderr.count("\n") == 1 and sorted(p.name for p in target.iterdir()) == [".bundle"]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Path:
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root and mount privileges)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def _inodes_left(mnt: Path, free: int) -> None:
    st = os.statvfs(mnt)
    used = st.f_files - st.f_ffree
    subprocess.run(["mount", "-o", f"remount,nr_inodes={used + free}", str(mnt)], check=True)


def test_disk_full_at_every_step_is_one_line_and_leaves_nothing_behind(tiny_fs: Path, tmp_path: Path) -> None:
    """Out of inodes at each point of a redeploy in turn (staging, state, records, manifest): one line,
    no staging or temporary file left, and the store paths either the old ones or the new ones."""
    root = build_tree(tiny_fs / "root", greeting="old")
    one = pack(root, tmp_path / "b1" / "env")
    remove_store(root)
    build_tree(root, greeting="new")
    two = pack(root, tmp_path / "b2" / "env")
    remove_store(root)
    redeploy(one)
    outcomes = []
    for free in range(40):
        _inodes_left(tiny_fs, free)
        try:
            redeploy(two)
        except BundleError as err:
            assert "\n" not in str(err) and "disk full" in str(err), err
            outcomes.append(run(root / HELLO / "bin/hello"))
        else:
            break
        assert not list((root / ARCH).glob(".bundle-staging-*")) and not list((root / ".bundle").glob(".*.tmp"))
    else:
        pytest.fail("never had inodes enough")
    assert len(outcomes) >= 3 and outcomes[0] == "old from libgreet"
    assert run(root / HELLO / "bin/hello") == "new from libgreet"
    assert verify_deployment(root)["problems"] == []


def test_disk_full_when_only_the_manifest_changes(tiny_fs: Path, tmp_path: Path) -> None:
    root = build_tree(tiny_fs / "root")
    one = pack(root, tmp_path / "b1" / "env")
    (root / "spack.lock").write_text('{"_meta": {"lockfile-version": 6}}\n')
    two = pack(root, tmp_path / "b2" / "env")
    remove_store(root)
    redeploy(one)
    _inodes_left(tiny_fs, 0)
    with pytest.raises(BundleError, match="disk full") as err:
        redeploy(two)
    assert "\n" not in str(err.value) and not list((root / ".bundle").glob(".*.tmp"))


# --- 7. a store on another filesystem (2 cases) ---

def test_store_behind_a_symlink_to_another_filesystem(built: Built, target: Path) -> None:
    other = Path("/dev/shm")
    if not other.is_dir() or os.stat(other).st_dev == os.stat(target.parent).st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    away = other / f"bundle-test-{os.getpid()}"
    target.mkdir(parents=True)
    away.mkdir()
    try:
        os.symlink(away, target / "opt")
        redeploy(built.bundle, target)
        assert run(target / HELLO / "bin/hello") == "hello from libgreet"
        assert verify_deployment(target)["problems"] == []
        assert not list((target / ARCH).glob(".bundle-staging-*"))
    finally:
        shutil.rmtree(away)


def test_store_on_its_own_mount(built: Built, target: Path, tiny_fs: Path) -> None:
    target.mkdir(parents=True)
    os.symlink(tiny_fs, target / "opt")
    redeploy(built.bundle, target)
    assert run(target / HELLO / "bin/hello") == "hello from libgreet"
    assert verify_deployment(target)["problems"] == []


# --- 8. smaller: top-directory modes, leftovers, prune, no-op (4 cases) ---

def test_verify_sees_the_mode_of_a_store_path_directory(built: Built, target: Path) -> None:
    redeploy(built.bundle)
    (target / HELLO).chmod(0o700)
    assert any("mode of the store path's directory differs" in p for p in verify_deployment(target)["problems"])


def test_leftovers_of_a_killed_run_are_cleaned_by_the_next(built: Built, target: Path, tmp_path: Path) -> None:
    redeploy(built.bundle)
    tmp = target / ".bundle" / ".state.json.99999999.tmp"
    tmp.write_text("{}")
    staging = target / ARCH / ".bundle-staging-99999999-deadbeef"
    (staging / "0" / "bin").mkdir(parents=True)
    redeploy(built.bundle)
    assert not tmp.exists() and not staging.exists()
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".{built.bundle.name}.99999999.tmp"
    stale.write_bytes(b"half a bundle")
    pack(build_tree(tmp_path / "root"), out)
    assert not stale.exists()


def test_store_paths_the_bundle_dropped_are_listed_then_pruned(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "root")
    one = pack(root, tmp_path / "b1" / "env")
    shutil.rmtree(root / key("plain"))
    two = pack(root, tmp_path / "b2" / "env")
    remove_store(root)
    redeploy(one)
    listed = redeploy(two)
    assert listed.stale_paths == [key("plain")] and (root / key("plain")).is_dir()
    proc = run_bundle("redeploy", str(two), "--quiet", "--json", "--prune", check=True)
    assert json.loads(proc.stdout)["pruned_paths"] == [key("plain")] and not (root / key("plain")).exists()
    assert verify_deployment(root)["problems"] == [] and redeploy(two).stale_paths == []


def test_noop_redeploy_says_nothing_was_read(built: Built, target: Path) -> None:
    run_bundle("redeploy", str(built.bundle), "--quiet", check=True)
    again = run_bundle("redeploy", str(built.bundle), check=True)
    assert "nothing to write" in again.stdout and "files were not read" in again.stdout


# --- 9. issue 21: a store path where the deployment keeps its own; a float size (7 cases, through the CLI) ---

def _cli_refuses(bundle: Path, target: Path, match: str) -> None:
    """`python -m bundle redeploy BUNDLE` exits 1 with MATCH on one stderr line, no traceback, the tree as it was."""
    before = tree_state(target)
    proc = run_bundle("redeploy", str(bundle), "--quiet")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert match in proc.stderr, proc.stderr
    assert tree_state(target) == before


@pytest.mark.parametrize("store_key", ["bin", "etc", "share/spack", f"lib/spack/x-1.0-{'e' * 32}"])
def test_store_path_where_the_deployment_owns_refused(built: Built, target: Path, tmp_path: Path,
                                                      store_key: str) -> None:
    """Spack's parts (bin, etc/spack, ...) are the deployment's even when this one has none of them yet:
    a store path that is one, holds one or lies in one is refused, as the issue's `bin` was not."""
    redeploy(built.bundle)
    assert not (target / "bin").exists()
    m, members = with_store_path(built, store_key)
    _cli_refuses(craft(tmp_path, m, members), target, "which the deployment owns")
    assert verify_deployment(target)["problems"] == []


@pytest.mark.parametrize("entry_type", ["file", "dir", "link"])
def test_a_float_size_is_one_line_naming_the_field(built: Built, target: Path, tmp_path: Path,
                                                   entry_type: str) -> None:
    redeploy(built.bundle)
    m = copy.deepcopy(built.manifest)
    entry = next(e for sp in m["paths"] for e in sp["files"] if e["type"] == entry_type)
    entry["size"] = 12.0 if entry_type != "file" else float(entry["size"])
    _cli_refuses(craft(tmp_path, m, members_of(built.bundle)), target, "field 'size'")
