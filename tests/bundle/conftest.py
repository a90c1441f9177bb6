"""Real Spack-like trees for the bundle tests: gcc-built shared library and executables with RPATHs
into a sibling store path, shebang scripts, relative and absolute symlinks, a .pc file, spec.json."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bundle.packing import scan, writer
from bundle.reading import reader

ARCH = "opt/spack/linux-debian12-x86_64/gcc-12.2.0"
HASHES = {"libgreet": "a" * 31 + "2", "hello": "b" * 31 + "3", "pytool": "c" * 31 + "4", "plain": "d" * 31 + "5"}
PROJECT = Path(__file__).resolve().parents[2]


def key(name: str, version: str = "1.0") -> str:
    return f"{ARCH}/{name}-{version}-{HASHES[name]}"


def _spec(prefix: Path, name: str, deps: list[str]) -> None:
    (prefix / ".spack").mkdir(parents=True, exist_ok=True)
    node = {"name": name, "version": "1.0", "hash": HASHES[name],
            "dependencies": [{"name": d, "hash": HASHES[d], "parameters": {"deptypes": ["link"]}} for d in deps]}
    (prefix / ".spack" / "spec.json").write_text(json.dumps({"spec": {"_meta": {"version": 4}, "nodes": [node]}}))


def build_tree(root: Path, greeting: str = "hello") -> Path:
    """A Spack root with four store paths; HELLO links libgreet through an RPATH."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    lib, hello, tool, plain = (root / key(n) for n in ("libgreet", "hello", "pytool", "plain"))
    for d in (lib / "lib/pkgconfig", lib / "include", hello / "bin", hello / "share/doc", tool / "bin", plain / "etc"):
        d.mkdir(parents=True, exist_ok=True)
    (lib / "include/greet.h").write_text("const char *greet(void);\n")
    src = root / "greet.c"
    src.write_text(f'#include "greet.h"\nconst char *greet(void) {{ return "{greeting} from libgreet"; }}\n')
    subprocess.run(["gcc", "-shared", "-fPIC", f"-I{lib}/include", "-Wl,-soname,libgreet.so.1",
                    "-o", str(lib / "lib/libgreet.so.1.0"), str(src)], check=True)
    os.symlink("libgreet.so.1.0", lib / "lib/libgreet.so.1")  # relative
    os.symlink(str(lib / "lib/libgreet.so.1"), lib / "lib/libgreet.so")  # absolute, inside its prefix
    (lib / "lib/pkgconfig/greet.pc").write_text(
        f"prefix={lib}\nlibdir=${{prefix}}/lib\nName: greet\nVersion: 1.0\nDescription: x\n"
        "Libs: -L${libdir} -lgreet\n")
    main = root / "hello.c"
    main.write_text('#include <stdio.h>\n#include "greet.h"\n'  # a path compiled into the binary, as configure does
                    f'static const char datadir[] = "{hello}/share/doc";\n'
                    'int main(int argc, char **argv) { puts(argc > 1 ? datadir : greet()); return 0; }\n')
    subprocess.run(["gcc", f"-I{lib}/include", "-o", str(hello / "bin/hello"), str(main), f"-L{lib}/lib",
                    "-lgreet", f"-Wl,-rpath,{lib}/lib"], check=True)
    src.unlink()
    main.unlink()
    wrapper = hello / "bin/hello-wrapper"
    wrapper.write_text(f"#!/bin/sh\nexec {hello}/bin/hello \"$@\"\n")
    wrapper.chmod(0o755)
    (hello / "share/doc/README").write_text("hello's documentation\n")
    os.symlink("../share/doc/README", hello / "bin/README")
    script = tool / "bin/pytool"
    script.write_text(f"#!{sys.executable}\nprint('pytool ok')\n")
    script.chmod(0o755)
    (plain / "etc/config").write_text("no spec.json here\n")
    _spec(lib, "libgreet", [])
    _spec(hello, "hello", ["libgreet"])
    _spec(tool, "pytool", [])
    (root / "spack.lock").write_text('{"_meta": {"lockfile-version": 5}}\n')
    (root / "share/spack").mkdir(parents=True, exist_ok=True)
    (root / "share/spack/setup-env.sh").write_text("export SPACK_SETUP_DONE=1\n")
    (root / "bin").mkdir(exist_ok=True)  # a Spack root has its spack command (a stand-in here)
    (root / "bin/spack").write_text("#!/bin/sh\necho 'spack stand-in'\n")
    (root / "bin/spack").chmod(0o755)
    return root


def tree_state(top: Path) -> dict[str, tuple]:
    """Every path under TOP: type and mode, and its content's sha256 or its link target."""
    out: dict[str, tuple] = {}
    for dirpath, dirs, names in os.walk(top):
        for n in dirs + names:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(f.read()).hexdigest())
            else:
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
    return out


def pack(root: Path, out: Path | str, **kw: object) -> Path:
    return writer.write(scan.build(root), out, **kw)


def remove_store(root: Path) -> None:
    shutil.rmtree(root / "opt")


PROG = f"{Path(sys.executable).name} -m bundle"  # what run_bundle's error lines start with (projectdir/cli.py)


def run_bundle(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """The CLI as users run it: a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "bundle", *args], cwd=PROJECT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT)})
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@dataclass
class Built:
    root: Path
    bundle: Path
    manifest: dict


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One tree packed once; the store is then removed so tests deploy into an empty root."""
    root = build_tree(tmp_path_factory.mktemp("built") / "root")
    bundle = pack(root, tmp_path_factory.mktemp("bundles"))
    m, _ = reader.read(bundle, manifest_only=True)
    shutil.rmtree(root)
    return Built(root, bundle, m)


@pytest.fixture
def target(built: Built) -> Path:
    """The build prefix, empty before and after each test that deploys there."""
    shutil.rmtree(built.root, ignore_errors=True)
    yield built.root
    shutil.rmtree(built.root, ignore_errors=True)


# --- a real Spack (tests marked spack) ------------------------------------------------------------

SPACK_INFO = ("import sys, spack.paths\n"
              "print(sys.executable)\nprint(spack.paths.prefix)\nprint(spack.paths.user_cache_path)\n")


def find_spack() -> str | None:
    """`spack` on PATH, after the line `python -m upstream env` prints (the project's own Spack) is applied."""
    proc = subprocess.run([sys.executable, "-m", "upstream", "env"], cwd=PROJECT, capture_output=True, text=True)
    path = os.environ.get("PATH", "")
    for line in proc.stdout.splitlines() if proc.returncode == 0 else ():
        if line.startswith("export PATH="):
            path = line[len("export PATH="):].replace("${PATH:+:$PATH}", "") + ":" + path
    return shutil.which("spack", path=path)


@dataclass
class SpackStore:
    root: Path  # a copy of Spack (bin, lib, etc, share) whose opt/spack holds the locked environment, fake-installed
    env_dir: Path  # the project's spack.yaml and spack.lock
    environ: dict[str, str]  # SPACK_PYTHON, user config and cache in the test's folder

    def spack(self, root: Path, *args: str) -> str:
        """ROOT/bin/spack -e ENV ARGS; its stdout."""
        proc = subprocess.run([str(root / "bin/spack"), "-e", str(self.env_dir), *args], capture_output=True,
                              text=True, env=self.environ, timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"spack {' '.join(args)}: {proc.stderr[-2000:]}")
        return proc.stdout


@pytest.fixture(scope="session")
def spack_store(tmp_path_factory: pytest.TempPathFactory) -> SpackStore:
    """The locked environment fake-installed (`install --fake --only-concrete`, offline) by a real Spack,
    in a copy of that Spack; skipped with one line where there is no spack, failed instead when CI=true."""
    spack = find_spack()
    if spack is None:
        reason = "no spack command (scripts/setup.sh installs the project's Spack; see python -m upstream env)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("spack")
    script = tmp / "info.py"
    script.write_text(SPACK_INFO)
    info = subprocess.run([spack, "python", str(script)], capture_output=True, text=True, timeout=300)
    if info.returncode != 0:
        pytest.fail(f"{spack} python failed: {info.stderr[-500:]}")
    python, prefix, cache = info.stdout.split()[-3:]
    root = tmp / "build" / "spack-root"
    for part in ("bin", "lib", "etc", "share"):
        shutil.copytree(Path(prefix) / part, root / part, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "cache").mkdir()
    if (Path(cache) / "package_repos").is_dir():  # the pinned spack-packages, already there (offline)
        os.symlink(Path(cache) / "package_repos", tmp / "cache" / "package_repos")
    env_dir = tmp / "env"
    env_dir.mkdir()
    for name in ("spack.yaml", "spack.lock"):
        shutil.copy(PROJECT / name, env_dir / name)
    environ = {**os.environ, "SPACK_PYTHON": python, "SPACK_USER_CONFIG_PATH": str(tmp / "config"),
               "SPACK_USER_CACHE_PATH": str(tmp / "cache"), "SPACK_DISABLE_LOCAL_CONFIG": "1"}
    store = SpackStore(root, env_dir, environ)
    store.spack(root, "install", "--fake", "--only-concrete")
    return store
