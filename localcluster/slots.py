"""Names, addresses and ports for clusters that must not meet any other on the machine (test runs).

Slot n of SLOTS is a bridge, a namespace prefix, a /24 and two ports of its own (pure: Slot). A run
claims a slot for as long as its process lives, with an flock on a file in a directory every clone
on the machine shares, and only when what the slot names is free now: no such link or namespace,
no route into its subnet, both ports bindable. The lock goes with the process however it ends; a
slot whose holder died with its cluster still up is brought down by the next claimant (reclaim).
"""

from __future__ import annotations

import dataclasses
import fcntl
import ipaddress
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from . import network
from .errors import LocalClusterError
from .spec import ClusterSpec

SLOTS = 1024
POOL = ipaddress.IPv4Network("10.252.0.0/14")  # beside the defaults: 10.250 (user), 10.249 (bench)
FIRST_PORT = 17000  # ports 17000-19047: above the user's 16817/8 and the bench's 16870/1
LOCK_DIR = Path(tempfile.gettempdir()) / "localcluster-slots"
# Route types `ip route show table all` puts before the destination.
ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "anycast", "blackhole", "unreachable",
               "prohibit", "throw", "nat"}


class SlotError(LocalClusterError, RuntimeError):
    """No slot can be claimed; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Slot:
    number: int

    def __post_init__(self) -> None:
        if not 0 <= self.number < SLOTS:
            raise SlotError(f"slot {self.number} is not between 0 and {SLOTS - 1}")

    @property
    def bridge(self) -> str:
        return f"sltest{self.number}"

    @property
    def prefix(self) -> str:
        return f"slt{self.number}-"

    @property
    def subnet(self) -> str:
        return str(ipaddress.IPv4Network((int(POOL.network_address) + 256 * self.number, 24)))

    @property
    def ctld_port(self) -> int:
        return FIRST_PORT + 2 * self.number

    @property
    def slurmd_port(self) -> int:
        return FIRST_PORT + 2 * self.number + 1

    def spec(self, root: Path, host: str, *, nodes: int = 4, cpus: int = 2) -> ClusterSpec:
        return ClusterSpec(root=root, host=host, nodes=nodes, cpus=cpus, bridge=self.bridge,
                           subnet=self.subnet, prefix=self.prefix, ctld_port=self.ctld_port,
                           slurmd_port=self.slurmd_port)


def order(start: int) -> list[int]:
    """Every slot once, from start on (a random start keeps runs that begin together apart)."""
    return [(start + i) % SLOTS for i in range(SLOTS)]


@dataclasses.dataclass(frozen=True)
class Seen:
    """What exists on the machine now, as far as a slot is concerned."""

    links: frozenset[str]
    namespaces: frozenset[str]
    networks: tuple[ipaddress.IPv4Network, ...]
    busy_ports: frozenset[int]


def routed_networks(text: str) -> tuple[ipaddress.IPv4Network, ...]:
    """The destinations in `ip -4 route show table all` output (a default route routes nothing in particular)."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in ROUTE_TYPES:
            words = words[1:]
        if not words or words[0] == "default":
            continue
        try:
            found.append(ipaddress.IPv4Network(words[0], strict=False))
        except ValueError:
            continue
    return tuple(found)


def conflicts(slot: Slot, seen: Seen) -> list[str]:
    """Why the slot cannot be used now (empty: it can)."""
    subnet = ipaddress.IPv4Network(slot.subnet)
    found = [f"link {name} exists" for name in sorted(seen.links)
             if name == slot.bridge or name.startswith(slot.prefix)]
    found += [f"namespace {name} exists" for name in sorted(seen.namespaces) if name.startswith(slot.prefix)]
    found += [f"{subnet} is routed ({net})" for net in seen.networks if net.prefixlen and net.overlaps(subnet)]
    found += [f"port {port} in use" for port in (slot.ctld_port, slot.slurmd_port) if port in seen.busy_ports]
    return found


def observe(slot: Slot | None = None) -> Seen:
    """The machine as it is now: links, namespaces, routes, and the slot's ports that cannot be bound."""
    return Seen(links=frozenset(network.all_links()), namespaces=frozenset(network.all_namespaces()),
                networks=routed_networks(network.routes()), busy_ports=busy_ports(slot) if slot else frozenset())


def busy_ports(slot: Slot) -> frozenset[int]:
    return frozenset(p for p in (slot.ctld_port, slot.slurmd_port) if not network.port_free(p))


class Claim:
    """A slot held by this process: an flock on its file, released on release() or when the process ends."""

    def __init__(self, slot: Slot, file: IO[str]) -> None:
        self.slot = slot
        self._file = file

    def recorded(self) -> ClusterSpec | None:
        """The spec the slot's previous holder recorded (its cluster may outlive it)."""
        self._file.seek(0)
        try:
            return ClusterSpec.from_json(self._file.read())
        except (ValueError, TypeError, KeyError):
            return None

    def record(self, spec: ClusterSpec) -> None:
        """Note the spec in the slot's file, so that a later claimant can bring it down if this run dies."""
        self._file.seek(0)
        self._file.truncate()
        self._file.write(spec.to_json())
        self._file.flush()

    def spec(self, root: Path, host: str, *, nodes: int = 4, cpus: int = 2) -> ClusterSpec:
        """The slot's spec at root, recorded."""
        spec = self.slot.spec(root, host, nodes=nodes, cpus=cpus)
        self.record(spec)
        return spec

    def release(self) -> None:
        self._file.close()


def try_claim(number: int, lock_dir: Path = LOCK_DIR) -> Claim | None:
    """The slot's lock, or None while another process (or another claim here) holds it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"slot-{number}", os.O_RDWR | os.O_CREAT, 0o666)
    file = os.fdopen(fd, "r+")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    return Claim(Slot(number), file)


def allocate(*, lock_dir: Path = LOCK_DIR, start: int | None = None,
             reclaim: Callable[[ClusterSpec], object] | None = None) -> Claim:
    """Claim the first slot from start (default: random) that no live process holds and nothing uses.

    reclaim (cluster.down, say) is given the spec a dead holder recorded when its slot is not free,
    and the slot is looked at again.
    """
    machine = observe()  # links, namespaces and routes once; each candidate's ports as it comes
    for number in order(random.randrange(SLOTS) if start is None else start):
        claim = try_claim(number, lock_dir)
        if claim is None:
            continue
        found = conflicts(claim.slot, dataclasses.replace(machine, busy_ports=busy_ports(claim.slot)))
        left = claim.recorded() if found and reclaim else None
        if reclaim and left and (left.bridge, left.prefix) == (claim.slot.bridge, claim.slot.prefix):
            reclaim(left)
            machine = observe()
            found = conflicts(claim.slot, dataclasses.replace(machine, busy_ports=busy_ports(claim.slot)))
        if not found:
            return claim
        claim.release()
    raise SlotError(f"no free slot of {SLOTS} for a cluster (locks in {lock_dir})")
