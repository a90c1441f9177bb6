"""Ship against `scp` + `tar xzf` of the same tree, over the same ssh, first ship and after one change.

The old method: `tar czf` the tree, `scp` the tarball to the new cluster, `tar xzf` it there. The ship:
`python -m bundle redeploy BUNDLE --to HOST:PREFIX`. Both go to HOST (a local-cluster node: run
`eval "$(scripts/local-cluster.sh env)"` first, so BUNDLE_SSH reaches it); then one package is changed
and both run again (the old method sends the whole tarball again). Bytes over ssh and wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bundle.bench import ARCH, generate
from bundle.errors import BundleError
from projectdir import cli


def _run(cmd: list[str]) -> tuple[float, str]:
    start = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.monotonic() - start, out


def old_method(ssh: list[str], host: str, tree: Path, work: Path, dest: str) -> tuple[int, float]:
    """tar czf (not counted: the tarball exists already in the old method), scp, tar xzf there."""
    tarball = work / "tree.tar.gz"
    subprocess.run(["tar", "czf", str(tarball), "-C", str(tree.parent), tree.name], check=True)
    scp = ["scp", "-q", *ssh[1:]]  # ssh's options (-F CONFIG) work for scp too
    first, _ = _run([*ssh, host, f"mkdir -p {dest}"])
    seconds, _ = _run([*scp, str(tarball), f"{host}:{dest}.tar.gz"])
    more, _ = _run([*ssh, host, f"tar xzf {dest}.tar.gz -C {dest} && rm {dest}.tar.gz"])
    return tarball.stat().st_size, first + seconds + more


def ship(bundle: Path, host: str, prefix: Path) -> tuple[int, float]:
    seconds, out = _run([sys.executable, "-m", "bundle", "redeploy", str(bundle), "--to", f"{host}:{prefix}",
                         "--json", "-q"])
    return json.loads(out)["sent_bytes"], seconds


def run(host: str, size_mb: int, files: int, packages: int, work: Path) -> list[tuple[str, int, float, int, float]]:
    ssh = shlex.split(os.environ.get("BUNDLE_SSH") or "ssh")
    tree = Path("/tmp") / f"bench-ship-{uuid.uuid4().hex[:8]}" / "root"  # a path the node's private /tmp lacks
    try:
        generate(tree, size_mb, files, packages)
        rows = []
        for step in ("first", "after one change"):
            if step != "first":  # one package's files all rewritten
                pkg = sorted((tree / ARCH).iterdir())[0]
                for f in sorted(p for p in pkg.rglob("*") if p.is_file()):
                    f.write_bytes(os.urandom(f.stat().st_size))
            packed = subprocess.run([sys.executable, "-m", "bundle", "pack", str(tree), "-o", f"{work}/", "--json",
                                     "-q"], check=True, capture_output=True, text=True)
            bundle = Path(json.loads(packed.stdout)["bundle"])
            old_bytes, old_s = old_method(ssh, host, tree, work, f"{tree.parent}/scp-tar")
            new_bytes, new_s = ship(bundle, host, tree)
            rows.append((step, old_bytes, old_s, new_bytes, new_s))
        subprocess.run([*ssh, host, f"rm -rf {tree.parent}"], check=False)
        return rows
    finally:
        shutil.rmtree(tree.parent, ignore_errors=True)


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--host", default="n1", help="the target (default n1, a local-cluster node)")
    p.add_argument("--size-mb", type=int, default=200, help="total bytes of the generated tree (MB)")
    p.add_argument("--files", type=int, default=10_000, help="number of files")
    p.add_argument("--packages", type=int, default=50, help="number of store paths")
    return p


def main(argv: list[str] | None = None) -> int:
    """The console script parsl-mpi-bench-ship (scripts/bench-ship.sh)."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)), BundleError)


def _main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-ship-") as work:
        rows = run(args.host, args.size_mb, args.files, args.packages, Path(work))
    print("| step | scp + tar xzf: MB sent | s | ship: MB sent | s |\n|---|---|---|---|---|")
    for step, ob, os_, nb, ns in rows:
        print(f"| {step} | {ob / 1e6:.1f} | {os_:.1f} | {nb / 1e6:.1f} | {ns:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
