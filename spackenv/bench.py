"""Spack's own route against the project's, on the same fake-installed tree, side by side in one run.

    Spack:    spack buildcache push --unsigned (a local directory mirror)  ->  spack install --cache-only
              into a fresh install root (Spack relocates);
    project:  python -m bundle pack (scripts/pack.sh)  ->  python -m bundle redeploy --prefix NEW --relocate
              (scripts/redeploy.sh).

The tree is the locked environment fake-installed (`spack -e . install --fake --only-concrete`): every
store path, spec.json and install database entry is real, the files inside are Spack's placeholders, so
the figures measure each route's own work per package, not moving gigabytes (scripts/bench-bundle.sh does
that). Each timed step starts after a `sync`. Not a test: run it with scripts/bench-spack.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

import projectdir
from projectdir import cli

from .errors import SpackenvError


class BenchError(SpackenvError, RuntimeError):
    """A step failed; one line."""


def find_spack() -> str:
    """`spack` on PATH, else the set-up's (python -m upstream install spack)."""
    on_path = shutil.which("spack")
    if on_path:
        return on_path
    from upstream import spack as setup

    folder = setup.installed()
    if folder is None:
        raise BenchError("spack not on PATH and not set up (python -m upstream install spack)")
    return str(folder / "bin" / "spack")


def timed(label: str, cmd: Sequence[str], **kw) -> tuple[float, subprocess.CompletedProcess[str]]:
    subprocess.run(["sync"], check=True)
    print(f"bench-spack: {label} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    result = subprocess.run(list(cmd), capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"{label} failed (exit {result.returncode}): {tail}")
    print(f"bench-spack: {label}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds, result


def checkout() -> Path:
    """The checkout whose spack.yaml and spack.lock are benchmarked (projectdir: the working directory up)."""
    try:
        return projectdir.required()
    except projectdir.NotFound as err:
        raise BenchError(str(err)) from None


def env_dir(dest: Path, store: Path, mirror: Path | None = None) -> Path:
    """The project's spack.yaml and spack.lock, installing into `store` (and reading `mirror`, if given)."""
    dest.mkdir(parents=True)
    shutil.copy(checkout() / "spack.lock", dest / "spack.lock")
    data = yaml.safe_load((checkout() / "spack.yaml").read_text())
    data["spack"].setdefault("config", {}).setdefault("install_tree", {})["root"] = str(store)
    if mirror is not None:
        data["spack"]["mirrors"] = {"bench": {"url": mirror.as_uri(), "signed": False}}
    (dest / "spack.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def installed_hashes(spack: str, env: Path) -> dict[str, str]:
    out = subprocess.run([spack, "-e", str(env), "find", "--deps", "--format", "{hash} {prefix} {external}"],
                         capture_output=True, text=True, check=False).stdout
    return {parts[0]: parts[1] for parts in (ln.split() for ln in out.splitlines()) if len(parts) >= 2}


def bench(work: Path) -> dict:
    spack = find_spack()
    python = sys.executable
    bundle_env = {**os.environ, "PYTHONPATH": str(projectdir.import_root())}
    lock = json.loads((checkout() / "spack.lock").read_text())
    built = {h for h, n in lock["concrete_specs"].items() if not n.get("external")}
    r: dict = {"spack": subprocess.run([spack, "--version"], capture_output=True, text=True).stdout.strip(),
               "store_paths": len(built), "load_before": os.getloadavg()[0]}

    # Each tree is laid out as a Spack root's (install root ROOT/opt/spack), the layout pack reads.
    source = env_dir(work / "env", work / "src" / "opt" / "spack")
    r["fake_install"], _ = timed("fake install of the locked environment",
                                 [spack, "-e", str(source), "install", "--fake", "--only-concrete"])
    prefixes = installed_hashes(spack, source)
    one = Path(next(prefixes[h] for h in built if h in prefixes))
    padded_root = one.parent.parent  # projection {platform}-{target}/{name}-{version}-{hash}
    r["padded_root_length"] = len(str(padded_root))

    # Spack's route.
    cache = work / "buildcache"
    r["push"], _ = timed("spack buildcache push (unsigned, local directory)",
                         [spack, "-e", str(source), "buildcache", "push", "--unsigned", "--update-index", str(cache)])
    r["push_files"], r["push_bytes"] = size(cache)
    target = env_dir(work / "env-from-cache", work / "from-buildcache" / "opt" / "spack", mirror=cache)
    install = [spack, "-e", str(target), "install", "--cache-only", "--only-concrete", "--no-check-signature"]
    r["cache_install"], _ = timed("spack install --cache-only (fresh install root)", install)
    r["cache_again"], _ = timed("spack install --cache-only again", install)
    got = installed_hashes(spack, target)
    r["cache_installed"] = len([h for h in built if h in got and got[h].startswith(str(work / "from-buildcache"))])
    # (installed_hashes is what `spack find` lists: Spack's install database at that root)

    # The project's route.
    out = work / "bundles"
    out.mkdir()
    r["pack"], packed = timed("pack", [python, "-m", "bundle", "pack", str(work / "src"), "-o", str(out),
                                       "--quiet", "--json"], env=bundle_env)
    packed_info = json.loads(packed.stdout)
    r["pack_bytes"], r["pack_store_paths"] = packed_info["compressed_bytes"], packed_info["store_paths"]
    deploy = [python, "-m", "bundle", "redeploy", packed_info["bundle"], "--prefix", str(work / "from-bundle"),
              "--relocate", "--quiet", "--json"]
    r["redeploy"], deployed = timed("redeploy --relocate (fresh prefix)", deploy, env=bundle_env)
    r["redeploy_again"], _ = timed("redeploy again", deploy, env=bundle_env)
    written = {key.rsplit("-", 1)[-1] for key in json.loads(deployed.stdout).get("written_paths", [])}
    r["redeployed"] = len(built & written)  # store paths of the lock (not sbang's bin/, also written)
    seen = installed_hashes(spack, env_dir(work / "env-from-bundle", work / "from-bundle" / "opt" / "spack"))
    r["bundle_found"] = len([h for h in built if h in seen and seen[h].startswith(str(work / "from-bundle"))])
    r["load_after"] = os.getloadavg()[0]
    return r


def table(r: dict) -> str:
    mb = 1e6
    rows = [
        ("step", "spack buildcache", "pack + redeploy"),
        ("export", f"push: {r['push']:.1f} s", f"pack: {r['pack']:.1f} s"),
        ("what is shipped", f"{r['push_files']} files, {r['push_bytes'] / mb:.1f} MB",
         f"1 file, {r['pack_bytes'] / mb:.1f} MB"),
        ("install at a fresh root (relocated)", f"install --cache-only: {r['cache_install']:.1f} s",
         f"redeploy --relocate: {r['redeploy']:.1f} s"),
        ("again (nothing to do)", f"{r['cache_again']:.1f} s", f"{r['redeploy_again']:.1f} s"),
        ("store paths written at the target", f"{r['cache_installed']} of {r['store_paths']}",
         f"{r['redeployed']} of {r['store_paths']}"),
        ("seen there by spack find", f"{r['cache_installed']} of {r['store_paths']}",
         f"{r['bundle_found']} of {r['store_paths']}"),
        ("total, export + install", f"{r['push'] + r['cache_install']:.1f} s", f"{r['pack'] + r['redeploy']:.1f} s"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"# {r['spack']}, the locked environment: {r['store_paths']} store paths fake-installed in "
             f"{r['fake_install']:.1f} s (install root padded to {r['padded_root_length']} characters); "
             f"load average {r['load_before']:.1f} -> {r['load_after']:.1f}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--workdir", type=Path, help="where the trees go (default: a temporary folder, removed after)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-bench-spack (scripts/bench-spack.sh)."""
    return cli.run(lambda prog: _main(prog, parser(prog).parse_args(argv)))


def _main(prog: str, args: argparse.Namespace) -> int:
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-spack-", dir=args.workdir))
    try:
        r = bench(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"{prog}: kept {work}", file=sys.stderr)
    print(table(r))
    if args.json:
        print(json.dumps(r, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
