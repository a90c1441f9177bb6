"""The Flux instance's resources as Slurm allocated them: a broker config written from the block's own Slurm env.

Flux discovers a node's cores with hwloc and would schedule every core it sees; Slurm may have given the
job fewer CPUs on that node (a partial node, CoreSpecCount, or a node Slurm describes with fewer CPUs
than it has, as the local cluster's). So before `flux start`, `python -m workflows.flux.allocation PATH`
writes a broker config (flux-config-resource(5): [[resource.config]]) with one Flux core per CPU Slurm
allocated on each node, from SLURM_JOB_NODELIST and SLURM_JOB_CPUS_PER_NODE, and the brokers start with
`-c PATH`. The hosts appear in Slurm's node order, which is the brokers' rank order (srun's block
distribution, one broker per node), and that is how Flux ranks configured hosts.

noverify: Slurm's allocation is the authority. Flux would otherwise drain a node whose hostname is not
Slurm's node name (NodeHostname) or whose hwloc shows fewer cores than Slurm counts CPUs (hyperthreads);
a core beyond hwloc's only costs that job its CPU binding (the job shell warns and runs it unbound).

Pure but for main(); imports nothing of Parsl or Flux: it runs on every node before the broker.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import WorkflowsError

RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
REPEAT = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


class AllocationError(WorkflowsError, ValueError):
    """The Slurm environment does not describe an allocation this can read (the message is one line)."""


def _split_top(text: str) -> list[str]:
    """Split at the commas outside brackets: 'n[1-2],m3' -> ['n[1-2]', 'm3']."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth < 0:
            raise AllocationError(f"unbalanced brackets in host list {text!r}")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise AllocationError(f"unbalanced brackets in host list {text!r}")
    return [*parts, text[start:]]


def _ids(ranges: str, whole: str) -> list[str]:
    """'01-03,7' -> ['01', '02', '03', '7'] (a range keeps its zero padding)."""
    out = []
    for part in ranges.split(","):
        m = RANGE.match(part)
        if not m:
            raise AllocationError(f"bad range {part!r} in host list {whole!r}")
        lo, hi = m[1], m[2] or m[1]
        if int(hi) < int(lo):
            raise AllocationError(f"bad range {part!r} in host list {whole!r}")
        out += [str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1)]
    return out


def hosts(hostlist: str) -> list[str]:
    """Slurm's (and Flux's RFC 29) compressed host list, expanded in its order: 'n[1-3],m' -> n1 n2 n3 m."""
    out: list[str] = []
    for part in _split_top(hostlist.strip()):
        if not part:
            raise AllocationError(f"empty name in host list {hostlist!r}")
        if "[" not in part:
            out.append(part)
            continue
        head, rest = part.split("[", 1)
        ranges, tail = rest.split("]", 1)
        out += [head + i + t for i in _ids(ranges, hostlist) for t in (hosts(tail) if tail else [""])]
    return out


def cpus_per_node(counts: str, nodes: int) -> list[int]:
    """SLURM_JOB_CPUS_PER_NODE ('2(x3),1') as one count per node, checked against the node count."""
    out: list[int] = []
    for part in counts.strip().split(","):
        m = REPEAT.match(part)
        if not m:
            raise AllocationError(f"bad CPU count {part!r} in SLURM_JOB_CPUS_PER_NODE={counts!r}")
        out += [int(m[1])] * int(m[2] or 1)
    if len(out) != nodes:
        raise AllocationError(f"SLURM_JOB_CPUS_PER_NODE={counts!r} counts {len(out)} nodes, the node list {nodes}")
    if min(out) < 1:
        raise AllocationError(f"SLURM_JOB_CPUS_PER_NODE={counts!r} gives a node no CPU")
    return out


def core_ids(count: int) -> str:
    """The idset of `count` cores from 0: '0' or '0-7'."""
    return "0" if count == 1 else f"0-{count - 1}"


def resource_config(nodes: Sequence[str], cpus: Sequence[int], job_id: str = "") -> str:
    """The broker config (TOML): one [[resource.config]] entry per run of nodes with the same CPU count."""
    lines = [f"# The CPUs Slurm allocated to job {job_id or '?'}: one Flux core each (workflows.flux.allocation)",
             "[resource]", "noverify = true", ""]
    i = 0
    while i < len(nodes):
        j = i
        while j < len(nodes) and cpus[j] == cpus[i]:
            j += 1
        lines += ["[[resource.config]]", f'hosts = "{",".join(nodes[i:j])}"', f'cores = "{core_ids(cpus[i])}"', ""]
        i = j
    return "\n".join(lines)


def from_environment(env: Mapping[str, str]) -> str:
    """The config for the Slurm job this process runs in (its SLURM_JOB_* variables).

    Outside a Slurm job there is no allocation to follow: a config without resources (Flux discovers them),
    as for an instance a LocalProvider starts.
    """
    nodelist, counts = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST"), env.get("SLURM_JOB_CPUS_PER_NODE")
    if not nodelist and not counts:
        return "# Not in a Slurm job: Flux discovers the resources (workflows.flux.allocation)\n"
    if not nodelist or not counts:
        raise AllocationError("SLURM_JOB_NODELIST and SLURM_JOB_CPUS_PER_NODE must both be set, or neither")
    nodes = hosts(nodelist)
    return resource_config(nodes, cpus_per_node(counts, len(nodes)), env.get("SLURM_JOB_ID", ""))


def write(path: Path, text: str) -> None:
    """Atomically: every broker of the block may write the same file at once (the same text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    usage = ("usage: python -m workflows.flux.allocation PATH\n"
             "Write the broker config that gives a Flux instance the CPUs Slurm allocated to this job.")
    if args in (["-h"], ["--help"]):
        print(usage)
        return 0
    if len(args) != 1:
        print(usage, file=sys.stderr)
        return 2
    try:
        write(Path(args[0]), from_environment(os.environ))
    except (AllocationError, OSError) as err:
        print(f"workflows.flux.allocation: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
