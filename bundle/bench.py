"""Benchmark: what users do today (tar czf / tar xzf) against pack / redeploy, side by side in one run.

python -m bundle.bench [--size-mb 1024] [--files 50000] [--packages 50] [--workdir DIR] [--repeat N]
Generates a Spack-like store (text-like and binary-like files), then times each step as a subprocess,
each started after a sync (trees moved aside, not deleted, between steps: see aside()), and prints one
table with the ratios; --repeat N alternates tar xzf and redeploy N times and shows medians. The goals
of issue 5 are printed next to the figures.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import projectdir
from bundle.errors import BundleError
from projectdir import cli

ARCH = "opt/spack/linux-debian12-x86_64/gcc-12.2.0"
# 16 letters and a space: text-like bytes that compress about 2:1, like sources, headers and scripts.
TEXT = bytes.maketrans(bytes(range(256)), (b"etaoinshrdlucmw \n" * 16)[:256])


@dataclass(frozen=True)
class Step:
    name: str
    time: Timed
    note: str = ""


def file_sizes(total: int, count: int, rng: random.Random) -> list[int]:
    """COUNT sizes summing to about TOTAL: mostly small files, a few large ones, like an install tree."""
    weights = [rng.lognormvariate(0, 1.5) for _ in range(count)]
    scale = total / sum(weights)
    return [max(1, int(w * scale)) for w in weights]


def generate(root: Path, size_mb: int, files: int, packages: int, seed: int = 5) -> None:
    """A store of PACKAGES store paths with FILES files of SIZE_MB in total; a quarter binary-like."""
    rng = random.Random(seed)
    sizes = file_sizes(size_mb << 20, files, rng)
    for i, size in enumerate(sizes):
        pkg = i % packages
        digest = base64.b32encode(hashlib.sha256(b"pkg%d" % pkg).digest()).decode().lower()[:32]
        prefix = root / ARCH / f"pkg{pkg}-1.0-{digest}"
        sub = prefix / ("bin" if i % 4 == 0 else "lib" if i % 4 == 1 else f"share/d{i % 37}")
        sub.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        (sub / f"f{i}").write_bytes(data if i % 4 == 1 else data.translate(TEXT))


@dataclass(frozen=True)
class Timed:
    seconds: float
    cpu: float  # user + system seconds of the command and its children (gzip under tar)
    stdout: str


def timed(cmd: list[str], **kw: object) -> Timed:
    """CMD run and timed, started after a sync: the writeback left by the step before (a written tree
    or archive) is not charged to this one."""
    subprocess.run(["sync"], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Timed(seconds, cpu, proc.stdout)


def median(runs: list[Timed]) -> Timed:
    return Timed(statistics.median(r.seconds for r in runs), statistics.median(r.cpu for r in runs), "")


def aside(path: Path, work: Path) -> None:
    """Move PATH out of the way instead of deleting it before a timed step. Creating files right after
    deleting many is several times slower on ext4 without a journal (the inode allocator skips inodes
    freed in the last minutes), which charged the step after a deletion for it; all goes at the end."""
    if path.exists():
        trash = work / "aside"
        trash.mkdir(exist_ok=True)
        path.rename(trash / f"{len(list(trash.iterdir()))}-{path.name}")


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def ratio(a: Timed, b: Timed) -> str:
    return f"{a.seconds / b.seconds:.1f}x" if b.seconds > 0 else "inf"


def runs(values: list[Timed]) -> str:
    return "" if len(values) < 2 else f"; median of {' '.join(f'{v.seconds:.2f}' for v in values)}"


def run(work: Path, size_mb: int, files: int, packages: int, repeat: int = 1) -> dict:
    py = [sys.executable, "-m", "bundle"]
    env = {**os.environ, "PYTHONPATH": str(projectdir.import_root())}
    root = work / "root"
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    generate(root, size_mb, files, packages)
    subprocess.run(["sync"], check=True)
    gen = time.monotonic() - t0
    tree_bytes = du(root)
    tgz = work / "today.tar.gz"
    czf = timed(["tar", "czf", str(tgz), "-C", str(work), "root"])
    pack = timed(py + ["pack", str(root), "-o", str(work / "out") + "/", "--quiet"], env=env)
    bundle = next((work / "out").iterdir())
    bundle_mb = bundle.stat().st_size / 1e6
    xzfs, deploys = [], []
    for i in range(repeat):  # alternated, so both see the same moments of a shared machine
        untar = work / f"untar{i}"
        untar.mkdir()
        xzfs.append(timed(["tar", "xzf", str(tgz), "-C", str(untar)]))
        aside(root / "opt", work)
        aside(root / ".bundle", work)
        deploys.append(timed(py + ["redeploy", str(bundle), "--quiet"], env=env))
    xzf, deploy = median(xzfs), median(deploys)
    noop = timed(py + ["redeploy", str(bundle), "--quiet"], env=env)
    verify = timed(py + ["verify", str(root), "--quiet"], env=env)
    # one package changes: a file of pkg0 is rewritten, the tree packed again, the new bundle redeployed
    pkg0 = next((root / ARCH).glob("pkg0-*"))
    victim = next(p for p in sorted(pkg0.rglob("f*")) if p.is_file())
    victim.write_bytes(victim.read_bytes()[::-1] + b"changed\n")
    pkg0_bytes = du(pkg0)
    (work / "out" / bundle.name).unlink()
    subprocess.run(py + ["pack", str(root), "-o", str(work / "out") + "/", "--quiet"], env=env, check=True)
    bundle2 = next((work / "out").iterdir())
    one = timed(py + ["redeploy", str(bundle2), "--quiet", "--json"], env=env)
    summary = json.loads(one.stdout)
    return {
        "tree_mb": tree_bytes / 1e6, "files": files, "packages": packages, "generate_s": gen,
        "tgz_mb": tgz.stat().st_size / 1e6, "bundle_mb": bundle_mb, "load": (load_before, os.getloadavg()[0]),
        "steps": [Step("tar czf (today)", czf), Step("pack (zstd)", pack, f"{ratio(czf, pack)} faster"),
                  Step("tar xzf (today, no checks)", xzf, runs(xzfs).lstrip("; ")),
                  Step("redeploy (verify + stage + rename)", deploy, f"{ratio(xzf, deploy)} faster{runs(deploys)}"),
                  Step("redeploy again (no-op)", noop, "goal < 2 s"),
                  Step("verify deployment (every sha256)", verify),
                  Step("redeploy, one package changed", one,
                       f"wrote {summary['written_bytes'] / 1e6:.1f} MB in {len(summary['written_paths'])} store "
                       f"path(s); that package is {pkg0_bytes / 1e6:.1f} MB")],
    }


def table(r: dict) -> str:
    lines = [f"tree: {r['tree_mb']:.0f} MB, {r['files']} files, {r['packages']} store paths "
             f"(generated in {r['generate_s']:.1f} s)",
             f"size: tar.gz {r['tgz_mb']:.1f} MB, bundle {r['bundle_mb']:.1f} MB "
             f"(bundle/tgz = {r['bundle_mb'] / r['tgz_mb']:.2f})",
             f"load average (1 min) {r['load'][0]:.1f} before, {r['load'][1]:.1f} after, on {os.cpu_count()} cores", "",
             f"{'step':<40} {'seconds':>8} {'cpu s':>7}  note", "-" * 98]
    lines += [f"{s.name:<40} {s.time.seconds:>8.2f} {s.time.cpu:>7.2f}  {s.note}" for s in r["steps"]]
    lines += ["", "goals (issue 5): pack >= 3x faster than tar czf at equal or smaller size; redeploy >= 3x faster "
              "than tar xzf; no-op < 2 s; one change writes only that package"]
    return "\n".join(lines)


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--size-mb", type=int, default=1024, help="total bytes of the generated tree (MB)")
    p.add_argument("--files", type=int, default=50_000, help="number of files")
    p.add_argument("--packages", type=int, default=50, help="number of store paths")
    p.add_argument("--workdir", help="where to generate (default: a temporary directory, removed afterwards)")
    p.add_argument("--repeat", type=int, default=1, help="tar xzf and redeploy alternated N times; medians shown")
    return p


def main(argv: list[str] | None = None) -> int:
    """The console script parsl-mpi-bench-bundle (scripts/bench-bundle.sh)."""
    return cli.run(lambda prog: _main(parser(prog), argv), BundleError)


def _main(p: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = p.parse_args(argv)
    if args.size_mb < 1 or args.files < args.packages or args.packages < 1 or args.repeat < 1:
        p.error("need --size-mb >= 1, --files >= --packages >= 1, --repeat >= 1")
    for tool in ("tar", "gzip"):
        if shutil.which(tool) is None:
            p.error(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="bench-bundle-", dir=args.workdir))
    try:
        print(table(run(work, args.size_mb, args.files, args.packages, args.repeat)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
