"""Compare spack.lock files by what was solved, not by their bytes.

Spack rewrites metadata that says nothing about the solve: a Spack run from a git checkout
records `"spack": {"type": "git", "commit": ...}` where a release records `"type": "release"`,
and a forced re-solve orders roots and specs differently from run to run. The solve itself is
the roots (spec and hash) and the set of concrete spec hashes; hashes cover versions, variants,
targets and dependencies.

    python -m spackenv.lock same OLD NEW    exit 0 when the solves are the same, 1 (and why) when not
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def solve(lock: dict) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """The part of a lock that is the solve: (roots as (spec, hash), concrete spec hashes)."""
    return (frozenset((r["spec"], r["hash"]) for r in lock.get("roots", [])),
            frozenset(lock.get("concrete_specs", {})))


def differences(old: dict, new: dict) -> list[str]:
    """What differs between two solves, one line each (empty when they are the same)."""
    (old_roots, old_specs), (new_roots, new_specs) = solve(old), solve(new)
    lines = [f"root {spec} /{digest[:7]} {sign}" for sign, roots in (("removed", old_roots - new_roots),
                                                                       ("added", new_roots - old_roots))
             for spec, digest in sorted(roots)]
    changed = len(old_specs ^ new_specs)
    if changed:
        lines.append(f"{changed} concrete specs differ")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spackenv.lock", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    same = sub.add_parser("same", help="exit 0 when two locks hold the same solve")
    same.add_argument("old", type=Path)
    same.add_argument("new", type=Path)
    args = p.parse_args(argv)
    try:
        old, new = (json.loads(path.read_text()) for path in (args.old, args.new))
    except (OSError, ValueError) as err:
        print(f"spackenv.lock: cannot read a lock: {err}", file=sys.stderr)
        return 2
    diff = differences(old, new)
    for line in diff:
        print(line)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
