"""The shape of a local cluster and the configuration files it implies (pure)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shlex
from pathlib import Path

import projectdir

from .errors import LocalClusterError


def _project() -> Path:
    """The checkout the cluster serves (its scripts/node-ssh, its .state/), as projectdir finds it; else the
    folder the code came from."""
    try:
        return projectdir.find() or projectdir.import_root()
    except projectdir.NotFound:  # a bad $PARSL_MPI_STACK_PROJECT: the commands that need one say so
        return projectdir.import_root()


MAX_NODES = 200
PROJECT = _project()
DEFAULT_ROOT = PROJECT / ".state" / "cluster"
STATE_FILE = "cluster.json"  # under the root: the spec a running cluster was brought up with


class SpecError(LocalClusterError, ValueError):
    """A cluster shape that cannot be built."""

    refused = True


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    root: Path
    host: str
    nodes: int = 4
    cpus: int = 2
    bridge: str = "slbr0"
    subnet: str = "10.250.0.0/24"
    prefix: str = "slnode-"
    ctld_port: int = 16817
    slurmd_port: int = 16818
    partition: str = "debug"

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.nodes > MAX_NODES:
            raise SpecError(f"--nodes must be between 1 and {MAX_NODES}, got {self.nodes}")
        if self.cpus < 1 or self.cpus > 256:
            raise SpecError(f"--cpus must be between 1 and 256, got {self.cpus}")
        if not 1 <= len(self.bridge) <= 15 or not self.bridge.replace("-", "").isalnum():
            raise SpecError(f"--bridge must be 1-15 letters, digits or '-', got {self.bridge!r}")
        if not self.prefix or len(self.prefix) > 9 or not self.prefix.replace("-", "").isalnum():
            raise SpecError(f"--prefix must be 1-9 letters, digits or '-', got {self.prefix!r}")
        try:
            net = ipaddress.IPv4Network(self.subnet)
        except ValueError as err:
            raise SpecError(f"--subnet is not an IPv4 network: {err}") from None
        if net.num_addresses < self.nodes + 16:
            raise SpecError(f"--subnet {self.subnet} is too small for {self.nodes} nodes")
        for name, port in (("--ctld-port", self.ctld_port), ("--slurmd-port", self.slurmd_port)):
            if not 1024 <= port <= 65535:
                raise SpecError(f"{name} must be between 1024 and 65535, got {port}")
        if self.ctld_port == self.slurmd_port:
            raise SpecError("--ctld-port and --slurmd-port must differ")

    # Derived names and addresses -------------------------------------------------------------
    @property
    def node_names(self) -> list[str]:
        return [f"n{i}" for i in range(1, self.nodes + 1)]

    @property
    def host_address(self) -> str:
        """The bridge's address: slurmctld, srun and Parsl's interchange are reached there."""
        return str(ipaddress.IPv4Network(self.subnet)[1])

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    def node_address(self, index: int) -> str:
        """Address of node n<index> (1-based)."""
        return str(ipaddress.IPv4Network(self.subnet)[10 + index])

    def netns(self, node: str) -> str:
        return f"{self.prefix}{node}"

    def veth(self, node: str) -> str:
        return f"{self.prefix}{node}"[:15]

    # Files under the root --------------------------------------------------------------------
    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def slurm_conf(self) -> Path:
        return self.etc / "slurm.conf"

    @property
    def munge_dir(self) -> Path:
        return self.root / "munge"

    @property
    def munge_socket(self) -> Path:
        return self.munge_dir / "munge.socket.2"

    @property
    def munged_pid_file(self) -> Path:
        return self.munge_dir / "munged.pid"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def ctld_dir(self) -> Path:
        """slurmctld's saved state (StateSaveLocation): jobs survive a controller restart through it."""
        return self.root / "ctld"

    @property
    def slurmctld_pid_file(self) -> Path:
        return self.run_dir / "slurmctld.pid"

    def slurmd_pid_file(self, node: str) -> Path:
        """Node's slurmd pid file (node "%n" gives the pattern slurm.conf uses)."""
        return self.run_dir / f"slurmd-{node}.pid"

    def ip_script(self, name: str) -> Path:
        """An `ip -batch` script the network set-up writes ("host" or a node name)."""
        return self.run_dir / f"{name}.ip"

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    def node_dir(self, node: str) -> Path:
        return self.root / "nodes" / node

    def spool_dir(self, node: str) -> Path:
        return self.node_dir(node) / "spool"

    def tmp_dir(self, node: str) -> Path:
        """The node's private /tmp."""
        return self.node_dir(node) / "tmp"

    @property
    def ssh_dir(self) -> Path:
        """The nodes' sshd keys and configs, and the client's ssh_config (localcluster/sshd.py)."""
        return self.root / "ssh"

    @property
    def ssh_config(self) -> Path:
        """The ssh_config naming every node (`ssh -F` it, as BUNDLE_SSH does)."""
        return self.ssh_dir / "ssh_config"

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["root"] = str(self.root)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClusterSpec:
        data = json.loads(text)
        data["root"] = Path(data["root"])
        return cls(**data)

    @classmethod
    def recorded(cls, root: Path) -> ClusterSpec | None:
        """The spec a cluster at root was brought up with, if any."""
        try:
            return cls.from_json((root / STATE_FILE).read_text())
        except (OSError, ValueError, TypeError):
            return None


def defaults() -> dict[str, object]:
    """ClusterSpec's field defaults by name (the command line takes its defaults from here)."""
    return {f.name: f.default for f in dataclasses.fields(ClusterSpec) if f.default is not dataclasses.MISSING}


# What does not depend on the spec: the plugins and timeouts of a cluster of network namespaces on one machine.
SCHEDULING = (
    "SlurmctldDebug=info",
    "SlurmdDebug=info",
    # No cgroup filesystem inside `ip netns exec`: track processes through /proc.
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    # Lets a node declare more CPUs than the machine has.
    "SlurmdParameters=config_overrides",
    "SwitchType=switch/none",
    "MpiDefault=none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_CPU",
    "SchedulerType=sched/backfill",
    "SchedulerParameters=bf_interval=1",
    "ReturnToService=2",
    "SlurmctldTimeout=10",
    "SlurmdTimeout=10",
    "MessageTimeout=10",
    "InactiveLimit=0",
    "KillWait=2",
    "MinJobAge=30",
    "JobCompType=jobcomp/none",
    "JobAcctGatherType=jobacct_gather/none",
    "AccountingStorageType=accounting_storage/none",
)


def _daemons(spec: ClusterSpec) -> list[str]:
    """Where slurmctld and slurmd listen, as whom they run, and where they keep state, pids and logs."""
    return [
        "# Written by localcluster; all state lives under the cluster root.",
        "ClusterName=local",
        f"SlurmctldHost={spec.host}({spec.host_address})",
        f"SlurmctldPort={spec.ctld_port}",
        f"SlurmdPort={spec.slurmd_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={spec.munge_socket}",
        f"StateSaveLocation={spec.ctld_dir}",
        # Per node (%n): spool and TmpFS, or the PMIx temp directories of different nodes collide.
        f"SlurmdSpoolDir={spec.spool_dir('%n')}",
        f"TmpFS={spec.tmp_dir('%n')}",
        f"SlurmctldPidFile={spec.slurmctld_pid_file}",
        f"SlurmdPidFile={spec.slurmd_pid_file('%n')}",
        f"SlurmctldLogFile={spec.log_dir}/slurmctld.log",
        f"SlurmdLogFile={spec.log_dir}/slurmd-%n.log",
    ]


def slurm_conf(spec: ClusterSpec) -> str:
    """slurm.conf for the cluster: every path under the root, nothing in /etc/slurm."""
    lines = [*_daemons(spec), *SCHEDULING]
    for i, node in enumerate(spec.node_names, start=1):
        lines.append(
            f"NodeName={node} NodeAddr={spec.node_address(i)} NodeHostname={node} "
            f"CPUs={spec.cpus} State=UNKNOWN"
        )
    lines.append(
        f"PartitionName={spec.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
    )
    return "\n".join(lines) + "\n"


def hosts_file(spec: ClusterSpec) -> str:
    """/etc/hosts as the nodes see it: MPICH's Hydra and others resolve node names, with no DNS."""
    lines = ["127.0.0.1 localhost", f"{spec.host_address} {spec.host}"]
    lines += [f"{spec.node_address(i)} {node}" for i, node in enumerate(spec.node_names, start=1)]
    return "\n".join(lines) + "\n"


def cgroup_conf() -> str:
    """cgroup.conf: slurmd reads it even with proctrack/linuxproc and dies without a plugin it can load."""
    return "CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n"


def shared_under_tmp(paths: list[Path]) -> list[str]:
    """Top-level /tmp entries holding shared paths (a checkout in /tmp): nodes must still see them."""
    tops = {Path("/tmp", p.resolve().relative_to("/tmp").parts[0]) for p in paths
            if p.resolve().is_relative_to("/tmp") and p.resolve() != Path("/tmp")}
    return sorted(str(t) for t in tops)


def shared_paths(spec: ClusterSpec) -> list[str]:
    """What the nodes see although it is under /tmp: the cluster's root, the checkout, the project's code."""
    return shared_under_tmp([spec.root, PROJECT, projectdir.import_root()])


def client_env(spec: ClusterSpec) -> dict[str, str]:
    """What client commands and jobs need to use this cluster."""
    return {
        "SLURM_CONF": str(spec.slurm_conf),
        # Debian's PMIx shared-memory store segfaults in a few % of srun --mpi=pmix steps.
        "PMIX_MCA_gds": "hash",
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "LOCAL_CLUSTER_ADDRESS": spec.host_address,
        "LOCAL_CLUSTER_ROOT": str(spec.root),
        # What the nodes see under their private /tmp all the same (workflows/settings.py's pre-flight reads it).
        "LOCAL_CLUSTER_SHARED": os.pathsep.join(shared_paths(spec)),
        # Flux's ssh:// connector wants one program: this one is ssh -F <the ssh_config below> to the nodes' sshd.
        "FLUX_SSH": str(PROJECT / "scripts" / "node-ssh"),
        # The nodes' real sshd, for the bundle's ship (python -m bundle redeploy --to NODE:PREFIX).
        "BUNDLE_SSH": f"ssh -F {shlex.quote(str(spec.ssh_config))}",
    }
