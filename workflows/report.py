"""result.json, the summary table and placement.png (pure builders, one writer each)."""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .outputs import CommandRun, Outcome, Place
from .placement import Run
from .settings import Settings


def facts(outcome: Outcome, monitoring: dict[str, Any], partition_nodes: Iterable[str], run_dir: Path
          ) -> dict[str, Any]:
    """What result.json records of the run beside its settings, runs and problems."""
    timed = outcome.commands or outcome.runs
    lost = lost_block_facts(outcome.lost_seen, outcome.lost_retried, outcome.lost_replaced, outcome.runs, run_dir)
    return {"block_samples": outcome.block_samples, "cancelled_jobs": outcome.cancelled_jobs,
            "failed_runs": sorted(outcome.command_errors if outcome.commands else outcome.errors),
            "max_concurrent_runs": max_concurrency(timed), "monitoring": dict(monitoring),
            "lost_blocks": lost, "partition_nodes": sorted(partition_nodes)}


def lost_block_facts(seen: list[dict[str, Any]], retried: list[tuple[float, str, str]], replaced: list[dict[str, Any]],
                     runs: Sequence[Run], run_dir: Path) -> list[dict[str, Any]]:
    """One record per lost block: its job, first node, when, what was done, the runs resubmitted and where
    they ran. seen: the stall watch's (mpi); retried: tasks Parsl retried at no cost (when, host, stdout); replaced: the
    flux executor's own records (stdout paths of the jobs it resubmitted)."""
    by_output = {str(run_dir / r.output): r for r in runs}

    def record(job: str, node: str, at: float, how: str, outputs: list[str], replacement: Any) -> dict[str, Any]:
        again = sorted({by_output[o].index for o in outputs if o in by_output})
        return {"job": job, "node": node, "at": at, "how": how, "resubmitted": again,
                "ran_on": {str(i): runs[i].nodes for i in again}, "replacement": replacement}

    records = [record(b["job_id"], b["host"], b["at"], b["reason"], b["resubmitted"], b["replacement"])
               for b in replaced]
    seen = sorted((b for b in seen if b["job"] not in {r["job"] for r in records}), key=lambda b: b["at"])
    # a task lost with its pool goes with the loss of its pool's host, else the last one seen before Parsl
    # reported it (its heartbeats stop being awaited 12 s later, maybe after a later loss)
    owner = [next((i for i, b in enumerate(seen) if b["host"] == host),
                  max([i for i, b in enumerate(seen) if b["at"] <= at] or [0])) for at, host, _ in retried]
    outputs = [[o for (_, _, o), i in zip(retried, owner, strict=True) if i == n] for n in range(len(seen))]
    records += [record(b["job"], b["host"], b["at"], b["action"], outs, None)
                for b, outs in zip(seen, outputs, strict=True)]
    return sorted(records, key=lambda r: r["at"])


class Timed(Protocol):
    """A run with the interval its stamps give (a hello world run, a run of the user's program)."""

    @property
    def start(self) -> float | None: ...

    @property
    def end(self) -> float | None: ...


def max_concurrency(runs: Sequence[Timed]) -> int:
    """The most runs that were in flight at one moment."""
    events = sorted([(r.start, 1) for r in runs if r.start is not None]
                    + [(r.end, -1) for r in runs if r.end is not None], key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def result(s: Settings, label: str, runs: Sequence[Run], problems: Sequence[str], wall: float,
           extra: dict[str, Any] | None = None, commands: Sequence[CommandRun] | None = None) -> dict[str, Any]:
    """result.json's content. label says what ran (`mpi/flux`: variants.label), the parameters how.

    With commands (--command), "runs" are the user's program's runs and the hello world's are "probe_runs".
    """
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(s).items()}
    params["variant_options"] = dict(s.variant_options)  # {"flux_wrapper": "parsl"}: what was given
    hello = [_run_record(r) for r in sorted(runs, key=lambda r: r.index)]
    body = {"runs": hello} if commands is None else {
        "runs": [_command_record(r) for r in sorted(commands, key=lambda r: r.index)], "probe_runs": hello}
    return {
        "variant": s.variant,
        "label": label,
        "parameters": params,
        **body,
        "verified": not problems,
        "problems": list(problems),
        "wall_seconds": round(wall, 3),
        **(extra or {}),
    }


def _run_record(r: Run) -> dict[str, Any]:
    return {"index": r.index, "output": r.output, "nodes": r.nodes,
            "ranks": [dataclasses.asdict(k) for k in sorted(r.ranks, key=lambda k: k.rank)],
            "start": r.start, "end": r.end, "failed_attempts": [list(a) for a in r.failed_attempts]}


def _command_record(r: CommandRun) -> dict[str, Any]:
    """One run of the user's program: where each rank ran (node, CPUs), its exit status, its two output files."""
    return {"index": r.index, "output": r.output, "errors": r.errors, "nodes": r.nodes,
            "ranks": [{"rank": p.rank, "host": p.host, "cpus": list(p.cpus)} for p in r.places],
            "cores": cores(r.places), "exit_status": r.exit_status, "start": r.start, "end": r.end,
            "failed_attempts": [list(a) for a in r.failed_attempts]}


def cores(places: Sequence[Place]) -> dict[str, list[int]]:
    """The CPUs each node gave the run: every rank's, together."""
    by_node: dict[str, set[int]] = {}
    for p in places:
        by_node.setdefault(p.host, set()).update(p.cpus)
    return {host: sorted(cpus) for host, cpus in sorted(by_node.items())}


def cpu_ranges(cpus: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (the kernel's own list format)."""
    parts: list[str] = []
    for c in sorted(cpus):
        if parts and c == int(parts[-1].rpartition("-")[2]) + 1:
            parts[-1] = f"{parts[-1].partition('-')[0]}-{c}"
        else:
            parts.append(str(c))
    return ",".join(parts)


def retry_note(attempt_nodes: Sequence[str]) -> str:
    """An earlier, failed attempt of a run; one that failed before any rank answered has no nodes to name."""
    if attempt_nodes:
        return f"retried after an attempt on {','.join(attempt_nodes)}"
    return "retried after an attempt that failed before any rank answered"


def summary(data: dict[str, Any]) -> str:
    if data["parameters"].get("command"):
        return command_summary(data)
    runs = data["runs"]
    lines = [f"{data['label']}: {len(runs)} runs, wall {data['wall_seconds']:.1f} s", *_hello_table(data, runs)]
    lines += lost_block_lines(data.get("lost_blocks", []), _t0(runs))
    lines += _monitoring_lines(data.get("monitoring") or {})
    if data["verified"]:
        lines.append(HELLO_VERIFIED)
    else:
        lines.append("NOT verified:")
        lines += [f"  - {p}" for p in data["problems"]]
    return "\n".join(lines)


HELLO_VERIFIED = "verified: every CPU of every node answered once; overlapping runs used disjoint nodes"


def _times(r: dict[str, Any], t0: float) -> tuple[str, str]:
    start = f"{r['start'] - t0:8.2f}" if r["start"] is not None else f"{'?':>8}"
    took = f"{r['end'] - r['start']:7.2f}" if None not in (r["start"], r["end"]) else f"{'?':>7}"
    return start, took


def _t0(runs: Sequence[dict[str, Any]]) -> float:
    return min((r["start"] for r in runs if r["start"] is not None), default=0.0)


def _hello_table(data: dict[str, Any], runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = [f"{'run':>4}  {'nodes':<16}{'ranks':>6}  {'start s':>8}  {'took s':>7}"]
    failed = set(data.get("failed_runs", [])) if runs is data["runs"] else set()
    t0 = _t0(runs)
    for r in runs:
        start, took = _times(r, t0)
        notes = ["FAILED"] if r["index"] in failed else []
        notes += [retry_note(a) for a in r.get("failed_attempts", [])]
        lines.append(f"{r['index']:>4}  {','.join(r['nodes']):<16}{len(r['ranks']):>6}  {start}  {took}  "
                     f"{'; '.join(notes)}".rstrip())
    return lines


def command_summary(data: dict[str, Any]) -> str:
    """The user's program's runs: nodes, the cores each node gave, exit status, times, where the output is."""
    runs, command = data["runs"], shlex.join(data["parameters"]["command"])
    lines = [f"{data['label']}: {len(runs)} runs of {command}, wall {data['wall_seconds']:.1f} s"]
    if data["parameters"].get("probe"):
        probe_problems = [p for p in data["problems"] if p.startswith("probe: ")]
        lines += ["probe (the hello world first):", *_hello_table(data, data["probe_runs"]),
                  f"probe {'NOT verified' if probe_problems else HELLO_VERIFIED}", "runs of the command:"]
    lines.append(f"{'run':>4}  {'exit':>4}  {'ranks':>5}  {'start s':>8}  {'took s':>7}  "
                 f"{'cores (node:CPUs)':<28}output")
    t0 = _t0(runs)
    for r in runs:
        start, took = _times(r, t0)
        where = " ".join(f"{host}:{cpu_ranges(cpus)}" for host, cpus in r["cores"].items()) or "-"
        status = "?" if r["exit_status"] is None else str(r["exit_status"])
        notes = "".join(f"; {retry_note(a)}" for a in r["failed_attempts"])
        lines.append(f"{r['index']:>4}  {status:>4}  {len(r['ranks']):>5}  {start}  {took}  {where:<28}"
                     f"{r['output']} {r['errors']}{notes}")
    lines += _monitoring_lines(data.get("monitoring") or {})
    if data["verified"]:
        lines.append("every run exited 0")
    else:
        lines.append("NOT every run exited 0:" if not data["parameters"].get("probe") else "FAILED:")
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
    if data["parameters"].get("command"):
        state = "every run exited 0" if data["verified"] else "FAILED"
    else:
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
