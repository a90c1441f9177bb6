"""Compare spack.lock files by what was solved, not by their bytes.

Spack rewrites metadata that says nothing about the solve: a Spack run from a git checkout
records `"spack": {"type": "git", "commit": ...}` where a release records `"type": "release"`,
and a forced re-solve orders roots and specs differently from run to run. The solve itself is
the roots (spec and hash) and the set of concrete spec hashes; hashes cover versions, variants,
targets, externals' prefixes and dependencies.

    python -m spackenv.lock same OLD NEW    exit 0 when the solves are the same, 1 (and which specs
                                            changed, one line each) when not
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from projectdir import cli

from .errors import SpackenvError

# Node fields whose change says why a hash changed, in the order they are reported.
FIELDS = ("version", "arch", "parameters", "external", "namespace", "package_hash")


class Unreadable(SpackenvError, ValueError):
    """A lock that is not there or not JSON: nothing compared (exit 2)."""

    refused = True


def solve(lock: dict) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """The part of a lock that is the solve: (roots as (spec, hash), concrete spec hashes)."""
    return (frozenset((r["spec"], r["hash"]) for r in lock.get("roots", [])),
            frozenset(lock.get("concrete_specs", {})))


def _label(node: dict, digest: str) -> str:
    return f"{node.get('name', '?')}@{node.get('version', '?')} /{digest[:7]}"


def _why(old: dict, new: dict) -> str:
    """What differs between two nodes of the same package: fields, then dependencies by name."""
    reasons = []
    for field in FIELDS:
        a, b = old.get(field), new.get(field)
        if a == b:
            continue
        if field == "arch" and isinstance(a, dict) and isinstance(b, dict):
            reasons += [f"{k} {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif field == "external" and isinstance(a, dict) and isinstance(b, dict):
            reasons += [f"external {k}" + (f" {a.get(k)} -> {b.get(k)}" if k == "path" else "")
                        for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif field == "version":
            reasons.append(f"version {a} -> {b}")
        elif field == "parameters" and isinstance(a, dict) and isinstance(b, dict):
            reasons.append("variants " + ", ".join(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)))
        else:
            reasons.append(field.replace("_", " ") if a is not None and b is not None else
                           f"{field.replace('_', ' ')} {'added' if a is None else 'removed'}")
    deps_old = {d["name"]: d["hash"] for d in old.get("dependencies", [])}
    deps_new = {d["name"]: d["hash"] for d in new.get("dependencies", [])}
    changed = sorted(n for n in set(deps_old) | set(deps_new) if deps_old.get(n) != deps_new.get(n))
    if changed:
        reasons.append("dependencies " + ", ".join(changed))
    return "; ".join(reasons) or "hash only"


def _pairs(old_nodes: dict, new_nodes: dict) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Changed nodes paired by package name (then version), and the nodes only one side has."""
    gone = sorted(set(old_nodes) - set(new_nodes), key=lambda h: (old_nodes[h].get("name", ""), h))
    came = sorted(set(new_nodes) - set(old_nodes), key=lambda h: (new_nodes[h].get("name", ""), h))
    pairs = []
    for match in (lambda a, b: a.get("name") == b.get("name") and a.get("version") == b.get("version"),
                  lambda a, b: a.get("name") == b.get("name")):
        for h in list(gone):
            other = next((n for n in came if match(old_nodes[h], new_nodes[n])), None)
            if other is not None:
                pairs.append((h, other))
                gone.remove(h)
                came.remove(other)
    return sorted(pairs, key=lambda p: (old_nodes[p[0]].get("name", ""), p[0])), gone, came


def differences(old: dict, new: dict) -> list[str]:
    """Which specs differ between two solves, one line each (empty when they are the same)."""
    (old_roots, _), (new_roots, _) = solve(old), solve(new)
    old_nodes, new_nodes = old.get("concrete_specs", {}), new.get("concrete_specs", {})
    old_specs, new_specs = {s for s, _ in old_roots}, {s for s, _ in new_roots}
    lines = [f"root {spec} removed" for spec in sorted(old_specs - new_specs)]
    lines += [f"root {spec} added" for spec in sorted(new_specs - old_specs)]
    root_hashes = {h for _, h in old_roots | new_roots}
    pairs, gone, came = _pairs(old_nodes, new_nodes)
    for a, b in pairs:
        root = " (root)" if a in root_hashes or b in root_hashes else ""
        version = new_nodes[b].get("version")
        new_label = f"/{b[:7]}" if old_nodes[a].get("version") == version else f"@{version} /{b[:7]}"
        lines.append(f"changed {_label(old_nodes[a], a)} -> {new_label}{root}: "
                     f"{_why(old_nodes[a], new_nodes[b])}")
    lines += [f"removed {_label(old_nodes[h], h)}" for h in gone]
    lines += [f"added {_label(new_nodes[h], h)}" for h in came]
    # Roots whose spec and node are unchanged but whose hash moved to another node (a reordering is not one).
    old_map, new_map = dict(old_roots), dict(new_roots)
    lines += [f"root {spec} now /{new_map[spec][:7]} (was /{old_map[spec][:7]})"
              for spec in sorted(old_specs & new_specs)
              if old_map[spec] != new_map[spec] and old_map[spec] in new_nodes and new_map[spec] in old_nodes]
    return lines


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = cli.Parser(prog=prog, description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    same = sub.add_parser("same", help="exit 0 when two locks hold the same solve")
    same.add_argument("old", type=Path)
    same.add_argument("new", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The console script parsl-mpi-spack-lock: same OLD NEW exits 0 when equal, 1 when not, 2 unreadable."""
    return cli.run(lambda prog: _main(parser(prog).parse_args(argv)))


def _main(args: argparse.Namespace) -> int:
    try:
        old, new = (json.loads(path.read_text()) for path in (args.old, args.new))
    except (OSError, ValueError) as err:
        raise Unreadable(f"cannot read a lock: {err}") from None
    diff = differences(old, new)
    for line in diff:
        print(line)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
