"""python -m bundle pack | redeploy | verify | diff (bundle/__main__.py runs it): a thin shell over the API
(bundle.pack, bundle.redeploy, bundle.verify, bundle.diff) that draws progress and prints the summary."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import bundle
from bundle.api import LEVELS
from bundle.errors import BundleError
from projectdir import cli


class Progress:
    """Files and bytes done, on one stderr line (redrawn on a terminal, a final line otherwise)."""

    def __init__(self, label: str, quiet: bool, stream: TextIO = sys.stderr) -> None:
        self.label, self.quiet, self.stream = label, quiet, stream
        self.files = self.bytes = self.total_files = self.total_bytes = 0
        self.tty, self.last = stream.isatty(), 0.0
        self.sent_bytes: int | None = None

    def plan(self, files: int, nbytes: int) -> None:
        self.total_files, self.total_bytes = files, nbytes

    def add(self, nbytes: int) -> None:
        self.files += 1
        self.bytes += nbytes
        if self.tty and not self.quiet and (now := time.monotonic()) - self.last > 0.2:
            self.last = now
            self._draw("\r")

    def sent(self, nbytes: int) -> None:
        """Bytes sent so far (a ship): shown beside the files and bytes read."""
        self.sent_bytes = nbytes
        if self.tty and not self.quiet and (now := time.monotonic()) - self.last > 0.2:
            self.last = now
            self._draw("\r")

    def _draw(self, start: str, end: str = "") -> None:
        total = f"/{self.total_files}" if self.total_files else ""
        total_b = f"/{self.total_bytes / 1e6:.1f}" if self.total_bytes else ""
        sent = f", {self.sent_bytes / 1e6:.1f} MB sent" if self.sent_bytes is not None else ""
        self.stream.write(f"{start}{self.label}: {self.files}{total} files, {self.bytes / 1e6:.1f}{total_b} MB"
                          f"{sent}{end}")
        self.stream.flush()

    def finish(self) -> None:
        if not self.quiet and (self.files or self.tty):
            self._draw("\r" if self.tty else "", "\n")


def _steps(args: argparse.Namespace) -> Callable[[str], Progress]:
    """The API's progress: one stderr line per step (none with --quiet)."""
    return lambda label: Progress(label, args.quiet)


def cmd_pack(args: argparse.Namespace) -> dict:
    out = bundle.pack(args.root, args.output, store=args.store, lock=args.lock, with_spack=args.with_spack,
                      compression=args.compression, level=args.level, progress=_steps(args))
    return {**out, "text": out["bundle"]}


def redeploy_text(result: dict) -> str:
    """The summary users read: what was written, or that nothing was read; what was kept or pruned."""
    if result["read"]:
        lines = [f"deployed {result['target']}: {len(result['written_paths'])} of {result['store_paths']} "
                 f"store paths written ({result['written_bytes'] / 1e6:.1f} MB) in {result['seconds']} s"]
    else:
        lines = [f"deployed {result['target']}: nothing to write, all {result['store_paths']} store paths are "
                 f"deployed with the same digest; the bundle's files were not read (verify checks them)"]
    kept, stale, pruned = result["kept_paths"], result["stale_paths"], result["pruned_paths"]
    if kept:
        lines.append(f"kept {len(kept)} store paths the target already had (its own Spack, or its "
                     f"own installs of the same specs): {' '.join(kept[:3])}{' ...' if len(kept) > 3 else ''}")
    if stale:
        lines.append(f"{len(stale)} store paths no longer in the bundle are still deployed "
                     f"(--prune removes them): {' '.join(stale)}")
    if pruned:
        lines.append(f"pruned {len(pruned)} store paths: {' '.join(pruned)}")
    if result["spack_db_written"]:
        lines.append("merged the bundle's records into Spack's install database")
    return "\n".join(lines + [f"source {result['snippet']}"])


def ship_text(out: dict) -> str:
    """redeploy_text, then what crossed the wire."""
    return redeploy_text(out) + "\n" + (
        f"sent {len(out['sent_paths'])} store paths to {out['host']}: {out['sent_bytes'] / 1e6:.1f} MB "
        f"over ssh ({out['sent_store_bytes'] / 1e6:.1f} MB of files, gzip'd; "
        f"{out['sent_control_bytes'] / 1e3:.0f} kB code and manifest)")


def cmd_redeploy(args: argparse.Namespace) -> dict:
    def announce(target: Path) -> None:
        if not args.quiet:
            print(f"redeploy to {target}", file=sys.stderr, flush=True)

    if args.to and not args.quiet and not (args.profile or args.prefix):
        print(f"ship to {args.to}", file=sys.stderr, flush=True)
    out = bundle.redeploy(args.bundle, prefix=args.prefix, relocate=args.relocate, wait=args.wait, prune=args.prune,
                          profile=args.profile, profile_file=args.profile_file, to=args.to, ssh=args.ssh,
                          remote_python=args.remote_python, progress=_steps(args), on_target=announce)
    return {**out, "text": ship_text(out) if args.to else redeploy_text(out)}


def cmd_verify(args: argparse.Namespace) -> dict:
    result = bundle.verify(args.path, progress=_steps(args))
    what = Path(args.path).name if "bundle" in result else str(Path(args.path))
    return {**result, "text": f"{what}: OK, {result['store_paths']} store paths, every sha256 matches"}


def cmd_diff(args: argparse.Namespace) -> dict:
    d = bundle.diff(args.a, args.b)
    lines = [f"+ {e['key']}  {e['bytes']} bytes" for e in d["added"]]
    lines += [f"- {e['key']}  {e['bytes']} bytes" for e in d["removed"]]
    lines += [f"~ {e['key']}  {e['bytes_before']} -> {e['bytes_after']} bytes" for e in d["changed"]]
    return {**d, "text": "\n".join(lines) if lines else "no differences"}


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    common = cli.Parser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    common.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    p = cli.Parser(prog=prog, description="Pack an installed Spack tree into a reproducible bundle; redeploy it.")
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", parents=[common], help="ROOT -o DIR/[NAME]: pack a Spack root (or --store DIR)")
    pk.add_argument("root", help="SPACK_ROOT (store at opt/spack) or a store directory")
    pk.add_argument("-o", "--output", required=True, metavar="DIR/[NAME]",
                    help="DIR/ writes DIR/bundle-<hash>.tar.zst, DIR/NAME writes DIR/NAME-<hash>.tar.zst "
                         "(the manifest hash is always in the name; the path written is printed)")
    pk.add_argument("--with-spack", action="store_true",
                    help="also pack Spack itself (bin/, lib/spack, etc/spack, share/spack; no caches)")
    pk.add_argument("--store", help="store directory under ROOT, when not ROOT/opt/spack")
    pk.add_argument("--lock", help="spack.lock to include (default: ROOT/spack.lock when present)")
    pk.add_argument("--compression", choices=sorted(LEVELS), default="zstd")
    pk.add_argument("--level", type=int, help="compression level (zstd default 3, gzip default 6)")
    rd = sub.add_parser("redeploy", parents=[common], help="BUNDLE [--prefix DIR]: verify, stage, swap in")
    rd.add_argument("bundle", help="a bundle file, or HOST:PATH to pull one over ssh (read once, as a stream)")
    rd.add_argument("--to", metavar="[USER@]HOST:PREFIX",
                    help="ship over ssh: the target (ssh and python3 >= 3.6) asks for the store paths it lacks "
                         "and redeploys them at PREFIX (--relocate when PREFIX is not where the bundle was built)")
    rd.add_argument("--ssh", metavar="CMD", help="the ssh command, split like a shell (default: $BUNDLE_SSH or ssh)")
    rd.add_argument("--remote-python", metavar="PYTHON", default="python3",
                    help="with --to: the Python (3.6 or newer) that runs the target's side (default: python3)")
    rd.add_argument("--prefix", help="where to deploy (default: where the bundle was built)")
    rd.add_argument("--relocate", action="store_true", help="deploy at another --prefix, rewriting paths")
    rd.add_argument("--wait", action="store_true", help="wait for a concurrent redeploy instead of refusing")
    rd.add_argument("--prune", action="store_true",
                    help="remove store paths deployed earlier that the bundle no longer has (else only listed)")
    rd.add_argument("--profile", action="store_true", help="also add a line sourcing the snippet to ~/.bashrc")
    rd.add_argument("--profile-file", help="the profile file --profile edits (default ~/.bashrc)")
    vf = sub.add_parser("verify", parents=[common], help="BUNDLE|DEPLOYMENT: check every file's sha256")
    vf.add_argument("path")
    df = sub.add_parser("diff", parents=[common], help="A B: store paths added, removed, changed")
    df.add_argument("a")
    df.add_argument("b")
    return p


COMMANDS = {"pack": cmd_pack, "redeploy": cmd_redeploy, "verify": cmd_verify, "diff": cmd_diff}


def main(argv: list[str] | None = None) -> int:
    """The console script parsl-mpi-bundle, python3 -m bundle, scripts/pack.sh and scripts/redeploy.sh."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)), BundleError)


def _main(args: argparse.Namespace) -> int:
    try:
        result = COMMANDS[args.command](args)
    except OSError as err:  # a filesystem failure no step turned into a sentence: still one line
        where = f": {os.fsdecode(err.filename)}" if err.filename else ""
        raise BundleError(f"{err.strerror or err}{where}") from None
    text = result.pop("text")
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True))
    elif not args.quiet or args.command == "diff":
        print(text)
    return 0

