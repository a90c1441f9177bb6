"""A real sshd on every node (Debian's openssh-server), with keys made for the cluster.

Each node's sshd runs in that node's network, UTS and mount namespaces (entered from its slurmd), so
it listens on the node's own address, port 22, and a session sees the node's hostname and private
/tmp: a node stands in for a new cluster reached over ssh. The cluster's root holds everything
(ROOT/ssh: a host key, a client key, authorized_keys, sshd_config, and an ssh_config naming every
node with its address and the host key as known), so nothing under ~/.ssh or /etc/ssh is touched.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from .procs import CommandError, alive, read_pid, run, stop
from .spec import ClusterSpec

SSHD = "/usr/sbin/sshd"
PRIVSEP = Path("/run/sshd")  # sshd's privilege-separation directory (Debian's service makes it at start)


def ssh_dir(spec: ClusterSpec) -> Path:
    return spec.ssh_dir


def client_config(spec: ClusterSpec) -> Path:
    """The ssh_config that `ssh -F` reads to reach the nodes by name."""
    return spec.ssh_config


def pid_file(spec: ClusterSpec, node: str) -> Path:
    return spec.run_dir / f"sshd-{node}.pid"


def ssh_command(spec: ClusterSpec) -> str:
    """The ssh command line for BUNDLE_SSH (and the shell's `ssh`) to reach the nodes."""
    return f"ssh -F {shlex.quote(str(client_config(spec)))}"


def sshd_config(spec: ClusterSpec, node: str, address: str) -> str:
    d = ssh_dir(spec)
    return "\n".join([
        f"ListenAddress {address}", "Port 22", f"HostKey {d / 'host_key'}", f"PidFile {pid_file(spec, node)}",
        # the cluster's key (root's, in the state directory), and a user's own, as on a cluster's nodes
        f"AuthorizedKeysFile {d / 'authorized_keys'} .ssh/authorized_keys", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "StrictModes no",  # the keys live in the project's state directory, not under ~/.ssh
        "PrintMotd no", "AcceptEnv LANG LC_*", "Subsystem sftp internal-sftp", "MaxStartups 50:30:100", "",
    ])


def client_text(spec: ClusterSpec) -> str:
    d = ssh_dir(spec)
    blocks = []
    for i, node in enumerate(spec.node_names, start=1):
        blocks.append(f"Host {node} {spec.node_address(i)}\n  HostName {spec.node_address(i)}\n  User root\n"
                      f"  HostKeyAlias {spec.prefix}{node}\n")
    blocks.append(f"Host *\n  IdentityFile {d / 'id_ed25519'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
                  f"  UserKnownHostsFile {d / 'known_hosts'}\n  StrictHostKeyChecking yes\n  ConnectTimeout 10\n"
                  "  LogLevel ERROR\n")
    return "\n".join(blocks)


def write_files(spec: ClusterSpec) -> None:
    """Keys (host and client, made for this cluster), authorized_keys, known_hosts and both configs."""
    d = ssh_dir(spec)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    for name in ("host_key", "id_ed25519"):
        for f in (d / name, d / f"{name}.pub"):
            f.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"local-cluster-{spec.prefix}", "-f", str(d / name)])
    (d / "authorized_keys").write_text((d / "id_ed25519.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    host_pub = " ".join((d / "host_key.pub").read_text().split()[:2])
    (d / "known_hosts").write_text("".join(f"{spec.prefix}{n} {host_pub}\n" for n in spec.node_names))
    for i, node in enumerate(spec.node_names, start=1):
        (d / f"sshd_config-{node}").write_text(sshd_config(spec, node, spec.node_address(i)))
    client_config(spec).write_text(client_text(spec))


def start(spec: ClusterSpec, node: str, slurmd_pid: int) -> None:
    """sshd in NODE's namespaces (those of its slurmd); it forks into the background once listening."""
    PRIVSEP.mkdir(mode=0o755, exist_ok=True)
    config = ssh_dir(spec) / f"sshd_config-{node}"
    try:
        run(["nsenter", "-t", str(slurmd_pid), "-n", "-u", "-m", "--", SSHD, "-f", str(config),
             "-E", str(spec.log_dir / f"sshd-{node}.log")])
    except CommandError as err:
        raise CommandError(f"sshd on {node} did not start: {err}") from None


def running(spec: ClusterSpec, node: str) -> int | None:
    pid = read_pid(pid_file(spec, node))
    return pid if pid is not None and alive(pid) else None


def stop_all(spec: ClusterSpec) -> None:
    stop([p for n in spec.node_names if (p := running(spec, n)) is not None])


def reachable(spec: ClusterSpec, node: str, timeout: float = 10) -> bool:
    """`ssh NODE true` through the cluster's client config succeeds."""
    proc = subprocess.run(["ssh", "-F", str(client_config(spec)), node, "true"], capture_output=True,
                          timeout=timeout, check=False)
    return proc.returncode == 0
