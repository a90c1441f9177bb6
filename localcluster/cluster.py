"""Bring a local cluster up and down: munged, slurmctld and one slurmd per node namespace."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import network, sshd
from .errors import LocalClusterError
from .procs import CommandError, alive, pids_matching, read_pid, run, stop
from .spec import ClusterSpec, cgroup_conf, client_env, hosts_file, shared_paths, slurm_conf

# Which Debian package brings each command, for the one-line "missing package" error.
REQUIRED = {
    "munged": "munge",
    "slurmctld": "slurmctld (slurm-wlm)",
    "slurmd": "slurmd (slurm-wlm)",
    "sinfo": "slurm-client (slurm-wlm)",
    "ip": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
}

Progress = Callable[[str], None]


class ClusterError(LocalClusterError, RuntimeError):
    """The cluster cannot come up or go down; the message is one line."""


@dataclass
class NodeState:
    name: str
    state: str
    cpus: str


def _env(spec: ClusterSpec) -> dict[str, str]:
    return {**os.environ, **client_env(spec)}


def check_tools() -> None:
    for cmd, package in REQUIRED.items():
        if shutil.which(cmd) is None and not (cmd == "sshd" and os.access(sshd.SSHD, os.X_OK)):
            raise ClusterError(f"missing package {package}: '{cmd}' not found (run scripts/setup.sh)")
    if os.geteuid() != 0:
        raise ClusterError("no permission: the local cluster needs root (namespaces, bridge)")


def check_port_free(port: int) -> None:
    if not network.port_free(port):
        raise ClusterError(f"port {port} in use (pick another with --ctld-port)")


def load(root: Path) -> ClusterSpec | None:
    """The spec a cluster at root was brought up with, if any."""
    return ClusterSpec.recorded(root)


def node_states(spec: ClusterSpec) -> list[NodeState]:
    proc = run(["sinfo", "-h", "-N", "-o", "%N %T %c"], env=_env(spec), check=False, timeout=10)
    if proc.returncode != 0:
        return []
    states = []
    for line in proc.stdout.splitlines():
        name, state, cpus = line.split()
        states.append(NodeState(name, state, cpus))
    return states


def daemon_pids(spec: ClusterSpec) -> dict[str, int | None]:
    """munged, slurmctld and each slurmd, by pid file; None where it does not run."""
    files = {"munged": spec.munged_pid_file, "slurmctld": spec.slurmctld_pid_file}
    files.update({f"slurmd@{n}": spec.slurmd_pid_file(n) for n in spec.node_names})
    pids = {}
    for name, path in files.items():
        pid = read_pid(path)
        pids[name] = pid if pid is not None and alive(pid) else None
    return pids


def healthy(spec: ClusterSpec) -> bool:
    if any(pid is None for pid in daemon_pids(spec).values()):
        return False
    states = node_states(spec)
    return len(states) == spec.nodes and all(s.state in ("idle", "mixed", "allocated") for s in states)


def _write_files(spec: ClusterSpec) -> None:
    for d in (spec.etc, spec.log_dir, spec.run_dir, spec.ctld_dir):
        d.mkdir(parents=True, exist_ok=True)
    for node in spec.node_names:
        spec.spool_dir(node).mkdir(parents=True, exist_ok=True)
        tmp = spec.tmp_dir(node)
        tmp.mkdir(parents=True, exist_ok=True)
        tmp.chmod(0o1777)
    spec.slurm_conf.write_text(slurm_conf(spec))
    (spec.etc / "cgroup.conf").write_text(cgroup_conf())
    (spec.etc / "hosts").write_text(hosts_file(spec))
    spec.munge_dir.mkdir(parents=True, exist_ok=True)
    spec.munge_dir.chmod(0o755)  # munged refuses a socket directory others may not traverse
    key = spec.munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sshd.write_files(spec)
    spec.state_file.write_text(spec.to_json())


def _start_munged(spec: ClusterSpec) -> None:
    d = spec.munge_dir
    run(["munged", "--force", f"--socket={spec.munge_socket}", f"--key-file={d / 'munge.key'}",
         f"--pid-file={spec.munged_pid_file}", f"--log-file={spec.log_dir / 'munged.log'}",
         f"--seed-file={d / 'munged.seed'}"])


def _node_command(spec: ClusterSpec, node: str) -> list[str]:
    """slurmd inside the node's namespaces, with its own hostname, /etc/hosts, /tmp and /dev/shm.

    Like a compute node, a node has a private /tmp; what the cluster shares (the project and the
    cluster root) stays visible even when it lives under /tmp, re-bound from a descriptor opened
    before /tmp is covered (util-linux mount would otherwise resolve the path in the new /tmp).
    """
    q = shlex.quote
    keep = shared_paths(spec)
    steps = [f"hostname {node}", f"mount --bind {q(str(spec.etc / 'hosts'))} /etc/hosts"]
    steps += [f"exec {fd}<{q(path)}" for fd, path in enumerate(keep, start=3)]
    steps.append(f"mount --bind {q(str(spec.tmp_dir(node)))} /tmp")
    for fd, path in enumerate(keep, start=3):
        steps += [f"mkdir -p {q(path)}", f"mount --no-canonicalize --bind /proc/self/fd/{fd} {q(path)}",
                  f"exec {fd}<&-"]
    steps += ["mount -t tmpfs -o mode=1777,size=1g shm /dev/shm",
              f"exec slurmd -f {q(str(spec.slurm_conf))} -N {node}"]
    return ["ip", "netns", "exec", spec.netns(node), "unshare", "--uts", "sh", "-c", " && ".join(steps)]


def _start_slurm(spec: ClusterSpec) -> None:
    env = _env(spec)
    cmds = [["slurmctld", "-f", str(spec.slurm_conf)], *(_node_command(spec, node) for node in spec.node_names)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for cmd in cmds]
    for cmd, proc in zip(cmds, procs, strict=True):
        _, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            line = (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise ClusterError(f"{' '.join(cmd[:2])} failed to start: {line}")


def _wait_idle(spec: ClusterSpec, timeout: float) -> None:
    started = time.monotonic()
    while True:
        states = node_states(spec)
        if len(states) == spec.nodes and all(s.state == "idle" for s in states):
            return
        waited = time.monotonic() - started
        dead = [name for name, pid in daemon_pids(spec).items() if pid is None]
        if dead and waited > 1.0:  # daemons write their pid files right after forking
            raise ClusterError(f"{', '.join(dead)} exited during start-up")
        if waited > timeout:
            seen = ", ".join(f"{s.name}={s.state}" for s in states) or "sinfo gave no nodes"
            raise ClusterError(f"nodes not idle after {timeout:.0f} s ({seen})")
        time.sleep(0.03)


def _start_sshd(spec: ClusterSpec, nodes: list[str] | None = None) -> None:
    """One sshd per node, in the namespaces of the node's slurmd."""
    for node in nodes or spec.node_names:
        deadline = time.monotonic() + 5  # a slurmd just started writes its pid file once it forked
        while (pid := daemon_pids(spec).get(f"slurmd@{node}")) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is None:
            raise ClusterError(f"no slurmd on {node} to start its sshd beside")
        if sshd.running(spec, node) is None:
            sshd.start(spec, node, pid)


def log_tails(spec: ClusterSpec, lines: int = 5) -> str:
    out = []
    for log in sorted(spec.log_dir.glob("*.log")) if spec.log_dir.exists() else []:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"==> {log} <==\n" + "\n".join(tail))
    return "\n".join(out)


def up(spec: ClusterSpec, *, timeout: float = 30, progress: Progress = lambda _: None) -> str:
    """Bring the cluster up (idempotent); returns a one-line summary."""
    check_tools()
    previous = load(spec.root)
    if previous == spec and healthy(spec):
        return f"already up: {spec.nodes} nodes x {spec.cpus} CPUs at {spec.root}"
    down(previous or spec, progress=progress)
    if previous and previous != spec:
        down(spec, progress=progress)
    check_port_free(spec.ctld_port)
    started = time.monotonic()
    try:
        progress("writing configuration")
        _write_files(spec)
        progress(f"creating bridge {spec.bridge} and {spec.nodes} node namespaces")
        network.apply_up(spec)
        progress("starting munged, slurmctld and slurmd")
        _start_munged(spec)
        _start_slurm(spec)
        _wait_idle(spec, timeout)
        progress("starting sshd on every node")
        _start_sshd(spec)
    except (ClusterError, CommandError) as err:
        tails = log_tails(spec)
        down(spec)
        raise ClusterError(f"cluster did not come up: {err}" + (f"\n{tails}" if tails else "")) from None
    took = time.monotonic() - started
    return f"up: {spec.nodes} nodes x {spec.cpus} CPUs in {took:.2f} s (SLURM_CONF={spec.slurm_conf})"


def restart_controller(spec: ClusterSpec, *, timeout: float = 30) -> str:
    """Stop slurmctld and start it again on its saved state (jobs survive), as an admin restart does."""
    pid = daemon_pids(spec).get("slurmctld")
    if pid is None:
        raise ClusterError(f"slurmctld is not running for the cluster at {spec.root}")
    started = time.monotonic()
    stop([pid], grace=10)
    proc = run(["slurmctld", "-f", str(spec.slurm_conf)], env=_env(spec), check=False)
    if proc.returncode != 0:
        raise ClusterError(f"slurmctld did not restart: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    deadline = time.monotonic() + timeout
    while not node_states(spec):
        if time.monotonic() > deadline:
            raise ClusterError(f"slurmctld did not answer within {timeout:.0f} s of its restart")
        time.sleep(0.05)
    return f"slurmctld restarted in {time.monotonic() - started:.2f} s"


def _check_node(spec: ClusterSpec, node: str) -> None:
    if node not in spec.node_names:
        raise ClusterError(f"no node {node!r} in the cluster at {spec.root} (nodes: {', '.join(spec.node_names)})")


def kill_node(spec: ClusterSpec, node: str) -> str:
    """SIGKILL every process on one node, its slurmd and its job steps alike: a node that dies.

    Slurm finds out as it would on a cluster, when the node stops answering (SlurmdTimeout).
    """
    _check_node(spec, node)
    pids = [p for p in network.namespace_pids(spec.netns(node)) if alive(p)]
    stop(pids, grace=5, first=signal.SIGKILL)
    return f"{node}: killed {len(pids)} processes"


def revive_node(spec: ClusterSpec, node: str, *, timeout: float = 60) -> str:
    """Start a dead node's slurmd again and wait until Slurm has it idle (ReturnToService=2)."""
    _check_node(spec, node)
    if daemon_pids(spec).get(f"slurmd@{node}") is None:
        proc = subprocess.run(_node_command(spec, node), env=_env(spec), capture_output=True, text=True)
        if proc.returncode != 0:
            raise ClusterError(f"slurmd on {node} did not start: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    try:
        _start_sshd(spec, [node])
    except CommandError as err:
        raise ClusterError(str(err)) from None
    run(["scontrol", "update", f"NodeName={node}", "State=RESUME"], env=_env(spec), check=False)
    deadline = time.monotonic() + timeout
    while not any(s.name == node and s.state == "idle" for s in node_states(spec)):
        if time.monotonic() > deadline:
            raise ClusterError(f"{node} not idle within {timeout:.0f} s of its revival")
        time.sleep(0.1)
    return f"{node}: idle again"


def _cancel_jobs(spec: ClusterSpec) -> None:
    env = _env(spec)
    proc = run(["squeue", "-h", "-o", "%i"], env=env, check=False, timeout=5)
    jobs = proc.stdout.split() if proc.returncode == 0 else []
    if jobs:
        run(["scancel", *jobs], env=env, check=False, timeout=5)


def down(spec: ClusterSpec, *, progress: Progress = lambda _: None) -> str:
    """Cancel jobs, stop every process of the cluster, remove namespaces, links and state."""
    started = time.monotonic()
    pids = daemon_pids(spec)
    if pids.get("slurmctld"):
        progress("cancelling jobs")
        try:
            _cancel_jobs(spec)
        except CommandError:
            pass
    progress("stopping processes")
    in_nodes = [pid for ns in network.namespaces(spec) for pid in network.namespace_pids(ns)]
    stop(in_nodes)
    host_side = [p for p in pids.values() if p] + pids_matching(str(spec.root) + "/")
    stop(host_side)
    progress("removing namespaces and links")
    network.apply_down(spec)
    if spec.root.exists():
        shutil.rmtree(spec.root, ignore_errors=True)
    return f"down in {time.monotonic() - started:.2f} s"


def leftovers(spec: ClusterSpec) -> list[str]:
    """What of this cluster still exists: processes, namespaces, links, state (empty when clean)."""
    found = [f"process {p}" for p in pids_matching(str(spec.root) + "/")]
    found += [f"namespace {ns}" for ns in network.namespaces(spec)]
    found += [f"link {link}" for link in network.host_links(spec)]
    if spec.root.exists():
        found.append(f"state {spec.root}")
    return found


def status(spec: ClusterSpec) -> tuple[bool, str]:
    """(up, a readable table of daemons and nodes)."""
    lines = [f"cluster at {spec.root}: {spec.nodes} nodes x {spec.cpus} CPUs, bridge {spec.bridge}"]
    pids = daemon_pids(spec)
    for name, pid in pids.items():
        lines.append(f"  {name:<14} {'running, pid ' + str(pid) if pid else 'not running'}")
    states = node_states(spec) if pids.get("slurmctld") else []
    if states:
        lines.append(f"  {'NODE':<8}{'STATE':<12}CPUS")
        lines += [f"  {s.name:<8}{s.state:<12}{s.cpus}" for s in states]
    return healthy(spec), "\n".join(lines)


def env_lines(spec: ClusterSpec) -> str:
    """export lines, and an `ssh` shell function that reaches the nodes by name through their sshd."""
    lines = [f"export {k}={shlex.quote(v)}" for k, v in client_env(spec).items()]
    lines.append(f'ssh() {{ command {sshd.ssh_command(spec)} "$@"; }}')
    return "\n".join(lines)
