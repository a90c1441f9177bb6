"""Every field of a real manifest mutated in turn (issue 21): type, range and name. Each mutated manifest
is re-signed (the bundle named by its hash, the good members after it), so only the structural checks
can catch it, and redeployed over a deployment of the good bundle. Each must end in a one-line refusal
with the deployed tree byte for byte as it was (contents, link targets, modes, nothing added beside
it), or in a deployment that verifies; never in another exception (the CLI's traceback).

In-process through the Python API, for speed; test_hostile.py runs the CLI on the issue's two cases.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from bundle.deploying.fsops import rmtree
from bundle.deploying.redeploy import redeploy
from bundle.deploying.verify import verify_deployment
from bundle.errors import BundleError
from bundle.format import manifest, reserved
from bundle.packing import scan, writer
from bundle.reading import reader
from tests.bundle.conftest import ARCH, HASHES, build_tree, key, tree_state
from tests.bundle.test_archive import members_of

HELLO = key("hello")
Where = tuple[Any, ...]  # the keys and indices that lead from the manifest to a field


def spack_tree(root: Path) -> Path:
    """build_tree's Spack root, made to hold everything a manifest can carry: Spack's parts (packed
    --with-spack), sbang, and an install database whose records the manifest carries."""
    build_tree(root)
    for rel, text in {"lib/spack/spack/__init__.py": "# spack\n", "etc/spack/defaults/config.yaml": "config: {}\n",
                      "opt/spack/bin/sbang": "#!/bin/sh\nexec \"$@\"\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "opt/spack/bin/sbang").chmod(0o755)
    deps = {"hello": ["libgreet"]}
    installs = {HASHES[n]: {"spec": {"name": n, "version": "1.0", "hash": HASHES[n],
                                     "dependencies": [{"name": d, "hash": HASHES[d]} for d in deps.get(n, [])]},
                            "path": str(root / key(n)), "installed": True, "explicit": n == "hello", "ref_count": 0,
                            "installation_time": 1700000000.5}
                for n in ("libgreet", "hello", "pytool")}
    (root / "opt/spack/.spack-db").mkdir()
    (root / "opt/spack/.spack-db/index.json").write_text(json.dumps({"database": {"version": "8",
                                                                                  "installs": installs}}))
    return root


def signed(out: Path, m: object, members: bytes) -> Path:
    """A bundle of manifest M (ASCII JSON, so lone surrogates travel) followed by MEMBERS, named by M's hash."""
    data = json.dumps(m, sort_keys=True, separators=(",", ":")).encode()
    info = tarfile.TarInfo(writer.MANIFEST_NAME)
    info.size = len(data)
    head = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + data
    head += bytes(-len(head) % tarfile.BLOCKSIZE)
    path = out / writer.bundle_name("mutant", hashlib.sha256(data).hexdigest(), "zstd")
    path.write_bytes(zstandard.ZstdCompressor(level=1).compress(head + members + bytes(2 * tarfile.BLOCKSIZE)))
    return path


def member_bytes(bundle: Path) -> bytes:
    """The members of BUNDLE after its manifest, as tar bytes (no end blocks)."""
    buf = io.BytesIO()
    tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for info, content in members_of(bundle):
        tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buf.getvalue()  # before close(): the end blocks are not written yet


@dataclass
class Rig:
    manifest: dict
    members: bytes
    top: Path  # holds ROOT and nothing else: anything a run makes beside ROOT shows in its state
    root: Path  # the deployed tree of the good bundle
    pristine: Path  # a copy of it, to put back after a mutant that deployed
    state: dict[str, tuple]  # tree_state(top) of the good deployment
    out: Path  # where mutants are written


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Rig:
    build = tmp_path_factory.mktemp("mutation-build")
    top = tmp_path_factory.mktemp("mutation-deploy")
    root = spack_tree(top / "root")
    bundle = writer.write(scan.build(root, with_spack=True), build / "good/")
    m, _ = reader.read(bundle, manifest_only=True)
    assert "spack" in m and {sp.get("kind") for sp in m["paths"]} == {None, "spack"}
    shutil.rmtree(root)
    redeploy(bundle)
    assert verify_deployment(root)["problems"] == []
    pristine = build / "pristine"
    shutil.copytree(root, pristine, symlinks=True)
    assert tree_state(pristine) == tree_state(root)
    out = build / "mutants"
    out.mkdir()
    return Rig(m, member_bytes(bundle), top, root, pristine, tree_state(top), out)


# --- the mutations -------------------------------------------------------------------------------

OWNED_NAMES = ["bin", "etc", "etc/spack", "lib", "lib/spack", "share", "share/spack", "opt/spack/bin",
               "opt/spack/.spack-db", "opt/spack/bin/x-1.0-" + "e" * 32, "lib/spack/x-1.0-" + "e" * 32, ".bundle",
               ".bundle/x", ".bundle-staging-1-abc", f"{ARCH}/.bundle-staging-1-abc", "opt", "opt/spack", ARCH]
BY_NAME: dict[str, list[Any]] = {  # values aimed at what each field means, beside the generic ones
    "key": OWNED_NAMES + [f"{HELLO}/inner-1.0-{'f' * 32}", key("libgreet"), f"{ARCH}/new-1.0-{'e' * 32}",
                          f"{ARCH}/../{ARCH}/x-1.0-{'e' * 32}", "x-1.0-" + "e" * 32, "/abs/x-1.0-" + "e" * 32],
    "path": ["bin", "bin/hello", "bin/../bin", "./bin", "bin/", "/etc/passwd", ".spack", "new"],
    "target": ["/etc/passwd", "../../../../../../etc", "../" * 12 + "x", "x/../../..", "/", ".", "hello",
               "README/../../../../.."],
    "sha256": ["0" * 64, "g" * 64, "A" * 64, "0" * 63, "0" * 65],
    "mode": [0o4755, 0o2755, 0o1777, 0o777, 0o1000, 0, 0o7777, -0o755],
    "size": [0, 1, 1 << 40, 1 << 70, 12.0],
    "type": ["file", "dir", "link", "fifo", "hardlink", "char", ""],
    "kind": ["spack", "other", None, ""],
    "format": ["bundle/2", "bundle/0", "bundle/1 "],
    "install_root": ["", "opt", "opt/spack/x", "bin", "lib/spack", "/opt/spack", "..", ".bundle"],
    "unpadded_root": ["", "opt", "opt/spack/x", "bin", "lib/spack", "/opt/spack", "..", ".bundle"],
    "deps": [["x"], ["a" * 32] * 3, [HASHES["libgreet"], HASHES["libgreet"]]],
    "prefixed": [["bin"], ["bin/hello"] * 2, ["nope"], ["../x"]],
    "ref_count": [0, 5, -1, True, 1.5],
    "installed": [False, 1, "yes"],
    "explicit": [False, 0, "no"],
    "installation_time": [0, -1.0, "now", True],
}
DELETE = object()
ANY_TYPE: list[Any] = [None, True, False, 12, 12.0, -1, 2 ** 64, "x", "", [], {}, [1], {"a": 1}]


def _like(value: Any) -> list[Any]:
    """Values of VALUE's own type, out of range or shape: negative, huge, float twins, names with '..'
    or a leading '/', empty, duplicated or wrongly typed items, a field added."""
    if isinstance(value, bool):
        return [not value, int(value)]
    if isinstance(value, int):
        return [value + 1, -value - 1, 2 ** 63, 10 ** 30, float(value)]
    if isinstance(value, str):
        return [".", "..", "/", "bin", ".bundle", "a/../b", value + "/..", "../" + value, value + "/",
                value + "/x", "x" * 4097, value + "\udcff", value + "\0", value + "\n"]
    if isinstance(value, list):
        return [value[1:], value + value[:1], value + [1], value + [None], value + [{}]] if value else [[1], ["x"]]
    if isinstance(value, dict):
        return [{**value, "extra": 1}, {**value, "size": 12.0}, {**value, "size": "12"}]
    return []


def fields(m: dict) -> Iterator[Where]:
    """Where each kind of field of M lies: every top-level field, every field of the Spack section and of
    one install record (and its spec's dependency), every field of a store path of each kind (with
    dependencies and files holding the build root, Spack's part, sbang), and of one file, directory and
    symlink (a top-level one and a nested one); those store paths and entries themselves too."""
    for k in m:
        yield (k,)
    for k in m["spack"]:
        yield ("spack", k)
    record = m["spack"]["installs"][HASHES["hello"]]
    for k in record:
        yield ("spack", "installs", HASHES["hello"], k)
    yield ("spack", "installs", HASHES["hello"], "spec", "dependencies", 0, "hash")
    picks = [HELLO, "bin", "opt/spack/bin"]
    for i, sp in enumerate(m["paths"]):
        if sp["key"] not in picks:
            continue
        yield ("paths", i)
        for k in sp:
            yield ("paths", i, k)
        seen: set[tuple[str, bool]] = set()
        for j, e in enumerate(sp["files"]):
            kind = (e["type"], "/" in e["path"])
            if kind not in seen:
                seen.add(kind)
                yield ("paths", i, "files", j)
                for k in e:
                    yield ("paths", i, "files", j, k)


def mutants(m: dict) -> Iterator[tuple[str, dict]]:
    """(label, mutated copy of M) for every mutation of every field fields() names."""
    for where in fields(m):
        parent = m
        for step in where[:-1]:
            parent = parent[step]
        name, value = where[-1], parent[where[-1]]
        label = "/".join(str(s) for s in where)
        values = ANY_TYPE + _like(value) + BY_NAME.get(str(name), [])
        for new in [*values, DELETE]:
            if new == value and type(new) is type(value):
                continue
            mutant = copy.deepcopy(m)
            target = mutant
            for step in where[:-1]:
                target = target[step]
            if new is DELETE:
                del target[name]
                yield f"{label} deleted", mutant
            else:
                target[name] = new
                yield f"{label}={new!r:.60}", mutant
    for label, extra in (("paths+bin", "bin"), ("paths+etc", "etc"), ("paths+opt/spack/bin", "opt/spack/bin")):
        mutant = copy.deepcopy(m)
        sp = copy.deepcopy(next(sp for sp in m["paths"] if sp["key"] == HELLO))
        mutant["paths"].append({**sp, "key": extra})
        yield label, mutant


def attempt(rig: Rig, label: str, mutant: dict) -> str:
    """Redeploy MUTANT over the good deployment: "refused" (one line, everything as it was) or "deployed"
    (and it verifies; the good deployment is put back). An assertion names LABEL; any other exception
    is what the CLI would print as a traceback."""
    bundle = signed(rig.out, mutant, rig.members)
    changed = True
    try:
        try:
            redeploy(bundle)
        except BundleError as err:
            text = str(err)
            assert text and "\n" not in text, f"{label}: refusal is not one line: {text!r}"
            changed = tree_state(rig.top) != rig.state
            assert not changed, f"{label}: refused ({text}) but the tree changed"
            return "refused"
        problems = verify_deployment(rig.root)["problems"]
        assert problems == [], f"{label}: deployed, but verify finds {problems[:3]}"
        return "deployed"
    finally:
        bundle.unlink()
        if changed:  # deployed (or failed otherwise): the good deployment back, beside nothing else
            for path in rig.top.iterdir():
                rmtree(path)
            shutil.copytree(rig.pristine, rig.root, symlinks=True)


def test_every_field_mutated_is_refused_in_one_line_or_deploys_and_verifies(rig: Rig) -> None:
    outcomes: list[tuple[str, str]] = []
    crashed: list[str] = []
    for label, mutant in mutants(rig.manifest):
        try:
            outcomes.append((label, attempt(rig, label, mutant)))
        except Exception as err:  # noqa: BLE001 - every one is collected, then reported
            crashed.append(f"{label}: {type(err).__name__}: {err}"[:300])
    assert not crashed, f"{len(crashed)} mutants crashed:\n" + "\n".join(crashed[:40])
    deployed = [label for label, o in outcomes if o == "deployed"]
    print(f"{len(outcomes)} mutants of {len(list(fields(rig.manifest)))} fields: "
          f"{len(outcomes) - len(deployed)} refused in one line, {len(deployed)} deployed and verified")
    assert len(outcomes) > 1500 and len(deployed) < 300
    assert {label: o for label, o in outcomes if label.startswith("paths+")} == {
        "paths+bin": "refused", "paths+etc": "refused", "paths+opt/spack/bin": "refused"}
    for label in deployed:  # what may change without a refusal: labels the tool carries, not what it writes where
        # (a store path dropped, or all of them: the plan lists them as no longer in the bundle)
        field = label.split("=")[0].removesuffix(" deleted")
        dropped = label.endswith(" deleted") and field.startswith("paths/") and field.count("/") == 1
        assert field in ("lock", "spack_root", "paths", "spack/install_root") or field.startswith("spack/installs") \
            or field.rsplit("/", 1)[-1] in ("name", "version", "hash", "deps", "prefixed") or dropped, label


def test_a_store_path_in_place_of_the_deployed_sbang_is_refused(rig: Rig) -> None:
    """Without a "spack" section the manifest does not say where sbang lies, so validate cannot know;
    the plan does: what the deployment holds there is Spack's own."""
    m = copy.deepcopy(rig.manifest)
    del m["spack"]
    sbang = next(sp for sp in m["paths"] if sp["key"] == "opt/spack/bin")
    del sbang["kind"]
    sbang["files"] = sorted(sbang["files"] + [{"path": ".spack", "type": "dir", "mode": 0o755},
                                              {"path": ".spack/spec.json", "type": "file", "mode": 0o644, "size": 2,
                                               "sha256": hashlib.sha256(b"{}").hexdigest()}],
                            key=lambda e: e["path"])
    manifest.check(m)
    assert attempt(rig, "sbang as a store path", m) == "refused"
    with pytest.raises(BundleError, match="the deployment holds Spack's own opt/spack/bin there"):
        redeploy(signed(rig.out, m, rig.members))


def test_everything_a_deployment_makes_at_its_root_is_named_in_owned(rig: Rig) -> None:
    """format/reserved.py is what the store-path check refuses: every path of a real deployment (with Spack's parts,
    sbang and a database) is in a store path, holds store paths, or is one reserved.owner() names."""
    keys = [sp["key"] for sp in rig.manifest["paths"] if sp.get("kind") is None]
    spack = rig.manifest["spack"]
    for rel in tree_state(rig.root):
        in_store_path = any(rel == k or rel.startswith(k + "/") for k in keys)
        holds_store_paths = any(k.startswith(rel + "/") for k in keys)
        assert in_store_path or holds_store_paths or reserved.owner(rel, spack) is not None, rel
    assert reserved.owner(".bundle-staging-123-abcd", spack) == "a staging directory of a run"
