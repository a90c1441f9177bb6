"""The cluster's network: a bridge on the host, one namespace and veth pair per node.

Command builders are pure (tested without root); apply() runs them.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from .procs import CommandError, run
from .spec import ClusterSpec

Command = list[str]


def host_commands(spec: ClusterSpec) -> list[Command]:
    """ip commands run on the host: the bridge, the namespaces, one veth pair per node."""
    cmds: list[Command] = [
        ["ip", "link", "add", spec.bridge, "type", "bridge"],
        ["ip", "addr", "add", f"{spec.host_address}/{spec.prefixlen}", "dev", spec.bridge],
        ["ip", "link", "set", spec.bridge, "up"],
    ]
    for node in spec.node_names:
        ns, veth = spec.netns(node), spec.veth(node)
        cmds += [
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
            ["ip", "link", "set", veth, "master", spec.bridge],
            ["ip", "link", "set", veth, "up"],
        ]
    return cmds


def node_commands(spec: ClusterSpec, index: int) -> list[Command]:
    """ip commands run inside node n<index>'s namespace: loopback, its address, its link."""
    return [
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", f"{spec.node_address(index)}/{spec.prefixlen}", "dev", "eth0"],
        ["ip", "link", "set", "eth0", "up"],
    ]


def batch(cmds: list[Command]) -> str:
    """The commands as one `ip -batch` script: one process instead of hundreds."""
    return "".join(" ".join(c[1:]) + "\n" for c in cmds)


def apply_up(spec: ClusterSpec) -> None:
    """Host side in one batch, then every namespace's batch in parallel."""
    host_script = spec.ip_script("host")
    host_script.write_text(batch(host_commands(spec)))
    try:
        run(["ip", "-batch", str(host_script)])
    except CommandError as err:
        if "Operation not permitted" in str(err) or "Permission denied" in str(err):
            raise CommandError("no permission to create network namespaces (run as root)") from None
        raise
    procs = []
    for i, node in enumerate(spec.node_names, start=1):
        path = spec.ip_script(node)
        path.write_text(batch(node_commands(spec, i)))
        procs.append(subprocess.Popen(["ip", "-n", spec.netns(node), "-batch", str(path)],
                                      stderr=subprocess.PIPE, text=True))
    for proc, node in zip(procs, spec.node_names, strict=True):
        _, stderr = proc.communicate()
        if proc.returncode != 0:
            raise CommandError(f"ip -n {spec.netns(node)} -batch {spec.ip_script(node)}: {stderr.strip()}")


def all_namespaces() -> list[str]:
    """Every named network namespace on the machine."""
    try:
        return [line.split()[0] for line in run(["ip", "netns", "list"]).stdout.splitlines() if line]
    except CommandError:
        return []


def namespaces(spec: ClusterSpec) -> list[str]:
    """This cluster's node namespaces that exist now (also those a crashed run left)."""
    return [n for n in all_namespaces() if n.startswith(spec.prefix) and n[len(spec.prefix):].startswith("n")]


def namespace_pids(ns: str) -> list[int]:
    proc = run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def all_links() -> list[str]:
    """Every network link on the host (what `ip link` lists)."""
    return sorted(entry.name for entry in Path("/sys/class/net").iterdir())


def routes() -> str:
    """`ip -4 route show table all`: every IPv4 route of the host, its own addresses included."""
    try:
        return run(["ip", "-4", "route", "show", "table", "all"]).stdout
    except CommandError:
        return ""


def port_free(port: int) -> bool:
    """Whether slurmctld could bind the TCP port (connections of a previous run in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def host_links(spec: ClusterSpec) -> list[str]:
    """The bridge and host-side veths of this cluster that exist now."""
    links = [spec.bridge] if link_exists(spec.bridge) else []
    return links + [name for name in all_links() if name.startswith(spec.prefix) and name != spec.bridge]


def apply_down(spec: ClusterSpec) -> None:
    """Delete namespaces (their veth peers go with them), then any link left on the host."""
    for ns in namespaces(spec):
        run(["ip", "netns", "del", ns], check=False)
    for link in host_links(spec):
        run(["ip", "link", "del", link], check=False)
