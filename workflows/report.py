"""result.json and the summary table (pure builders, one writer)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .placement import Run
from .settings import Settings


def result(s: Settings, label: str, runs: Sequence[Run], problems: Sequence[str], wall: float,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """result.json's content. label says what ran (`mpi/flux`: variants.label), the parameters how."""
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(s).items()}
    return {
        "variant": s.variant,
        "label": label,
        "parameters": params,
        "runs": [{"index": r.index, "output": r.output, "nodes": r.nodes,
                  "ranks": [dataclasses.asdict(k) for k in sorted(r.ranks, key=lambda k: k.rank)],
                  "start": r.start, "end": r.end, "failed_attempts": [list(a) for a in r.failed_attempts]}
                 for r in sorted(runs, key=lambda r: r.index)],
        "verified": not problems,
        "problems": list(problems),
        "wall_seconds": round(wall, 3),
        **(extra or {}),
    }


def retry_note(attempt_nodes: Sequence[str]) -> str:
    """An earlier, failed attempt of a run; one that failed before any rank answered has no nodes to name."""
    if attempt_nodes:
        return f"retried after an attempt on {','.join(attempt_nodes)}"
    return "retried after an attempt that failed before any rank answered"


def summary(data: dict[str, Any]) -> str:
    runs = data["runs"]
    t0 = min((r["start"] for r in runs if r["start"] is not None), default=0.0)
    lines = [f"{data['label']}: {len(runs)} runs, wall {data['wall_seconds']:.1f} s",
             f"{'run':>4}  {'nodes':<16}{'ranks':>6}  {'start s':>8}  {'took s':>7}"]
    failed = set(data.get("failed_runs", []))
    for r in runs:
        start = f"{r['start'] - t0:8.2f}" if r["start"] is not None else f"{'?':>8}"
        took = f"{r['end'] - r['start']:7.2f}" if None not in (r["start"], r["end"]) else f"{'?':>7}"
        notes = ["FAILED"] if r["index"] in failed else []
        notes += [retry_note(a) for a in r.get("failed_attempts", [])]
        lines.append(f"{r['index']:>4}  {','.join(r['nodes']):<16}{len(r['ranks']):>6}  {start}  {took}  "
                     f"{'; '.join(notes)}".rstrip())
    lines += lost_block_lines(data.get("lost_blocks", []), t0)
    lines += _monitoring_lines(data.get("monitoring") or {})
    if data["verified"]:
        lines.append("verified: every CPU of every node answered once; overlapping runs used disjoint nodes")
    else:
        lines.append("NOT verified:")
        lines += [f"  - {p}" for p in data["problems"]]
    return "\n".join(lines)


def lost_block_lines(lost: Sequence[dict[str, Any]], t0: float) -> list[str]:
    """A line per block lost with its first node: when, how it was replaced, the runs resubmitted."""
    return [f"lost block job {b['job']} (first node {b['node']}) at {b['at'] - t0:.1f} s: {b['how']}; runs "
            f"{','.join(map(str, b['resubmitted'])) or 'none'} resubmitted"
            + (f" to block job {b['replacement']}" if b.get("replacement") else "") for b in lost]


def _monitoring_lines(m: dict[str, Any]) -> list[str]:
    """The monitored run's workflow id, database and task states (Parsl's own record), or why it was off."""
    if m.get("unsupported"):
        return [f"monitoring: off: {m['unsupported']}"]
    if not m.get("enabled"):
        return []
    line = f"monitoring: workflow {m.get('workflow_id')} in {m.get('database')}"
    if "error" in m:
        return [f"{line} ({m['error']})"]
    states: dict[str, int] = {}
    for t in m.get("tasks", []):
        states[t["state"]] = states.get(t["state"], 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return [f"{line}: {len(m.get('tasks', []))} tasks ({counts}); see: python workflows/run.py visualize "
            f"{Path(str(m.get('database'))).parent}"]


def write(run_dir: Path, data: dict[str, Any]) -> Path:
    path = run_dir / "result.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def plot_title(data: dict[str, Any], runs: Sequence[dict[str, Any]], nodes: int) -> str:
    """What ran (the label: `mpi/flux`, not `mpi`), on how many of the nodes, verified or not."""
    state = "verified" if data["verified"] else "NOT verified"
    used = len({n for r in runs for n in r["nodes"]})
    return f"{data['label']}: {len(runs)} MPI runs on {used} of {nodes} nodes ({state})"


def plot(data: dict[str, Any], path: Path) -> Path:
    """placement.png: a row per node, time across, each MPI run a labelled bar (overlap shows at a glance)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in data["runs"] if r["start"] is not None and r["end"] is not None]
    # Every node of the partition gets a row, so a node no run used shows as an empty row.
    nodes = sorted(set(data.get("partition_nodes", [])) | {n for r in runs for n in r["nodes"]},
                   key=lambda n: (len(n), n))
    t0 = min((r["start"] for r in runs), default=0.0)
    fig, ax = plt.subplots(figsize=(10, 1 + 0.5 * max(len(nodes), 1)))
    colours = plt.get_cmap("tab20")
    for r in runs:
        for n in r["nodes"]:
            y = nodes.index(n)
            ax.barh(y, r["end"] - r["start"], left=r["start"] - t0, height=0.7,
                    color=colours(r["index"] % 20), edgecolor="black", linewidth=0.5)
            ax.text(r["start"] - t0 + (r["end"] - r["start"]) / 2, y, str(r["index"]),
                    ha="center", va="center", fontsize=8)
    for b in data.get("lost_blocks", []):  # the moment a block lost its first node, and which node
        ax.axvline(b["at"] - t0, color="red", linestyle="--", linewidth=1)
        if b["node"] in nodes:
            ax.text(b["at"] - t0, nodes.index(b["node"]), f" lost: block {b['job']}", color="red", fontsize=8,
                    va="bottom")
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_ylim(len(nodes) - 0.5, -0.5)  # first node on top, every row whole
    ax.set_xlabel("seconds since the first MPI run started")
    ax.set_title(plot_title(data, runs, len(nodes)))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
