"""Slots: every test run's cluster gets a bridge, subnet, prefix and ports no other cluster on the machine has."""

import ipaddress
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import cluster, network, slots
from localcluster.spec import ClusterSpec, defaults

from ..conftest import PROJECT

EVERY = [slots.Slot(n) for n in range(slots.SLOTS)]


def test_every_slot_is_a_valid_spec_and_shares_nothing_with_another():
    specs = [s.spec(Path("/srv/c"), "h", nodes=200) for s in EVERY]  # ClusterSpec checks name lengths
    for field in ("bridge", "prefix", "subnet", "ctld_port", "slurmd_port"):
        assert len({getattr(s, field) for s in specs}) == slots.SLOTS, field
    ports = [p for s in specs for p in (s.ctld_port, s.slurmd_port)]
    assert len(set(ports)) == len(ports)
    nets = [ipaddress.IPv4Network(s.subnet) for s in specs]
    assert all(net.subnet_of(slots.POOL) for net in nets)
    # No prefix begins another's (a cluster's down removes what starts with its prefix).
    prefixes = sorted(s.prefix for s in specs)
    assert not any(b.startswith(a) for a, b in zip(prefixes, prefixes[1:], strict=False))


def test_slots_stay_clear_of_the_default_and_bench_clusters():
    user = ClusterSpec(root=Path("/x"), host="h")
    taken = {user.bridge, "slbench0", user.ctld_port, user.slurmd_port, 16870, 16871}
    for s in EVERY:
        assert not taken & {s.bridge, s.ctld_port, s.slurmd_port}
        assert not s.prefix.startswith(str(defaults()["prefix"])) and not s.prefix.startswith("slb-")
        for other in (user.subnet, "10.249.0.0/24"):
            assert not ipaddress.IPv4Network(s.subnet).overlaps(ipaddress.IPv4Network(other))
    with pytest.raises(slots.SlotError):
        slots.Slot(slots.SLOTS)


def test_order_visits_every_slot_once_from_start():
    order = slots.order(1000)
    assert order[:2] == [1000, 1001] and order[24] == 0 and sorted(order) == list(range(slots.SLOTS))


def test_routes_are_read_from_ip_route_show_table_all():
    text = textwrap.dedent("""\
        default via 192.0.2.1 dev eth0
        10.252.7.0/24 dev br proto kernel scope link src 10.252.7.1
        local 10.252.7.1 dev br table local proto kernel scope host src 10.252.7.1
        broadcast 10.252.7.255 dev br table local proto kernel scope link src 10.252.7.1
        unreachable 10.0.0.0/8 proto static
        """)
    assert [str(n) for n in slots.routed_networks(text)] == [
        "10.252.7.0/24", "10.252.7.1/32", "10.252.7.255/32", "10.0.0.0/8"]


def test_conflicts_name_what_is_in_the_way():
    s = slots.Slot(7)
    clear = slots.Seen(links=frozenset({"lo", "eth0", "sltest70", "slt70-n1"}), namespaces=frozenset({"slt70-n1"}),
                       networks=(ipaddress.IPv4Network("10.252.8.0/24"),), busy_ports=frozenset({17000}))
    assert s.subnet == "10.252.7.0/24" and slots.conflicts(s, clear) == []
    busy = slots.Seen(links=frozenset({"sltest7", "slt7-n1"}), namespaces=frozenset({"slt7-n1"}),
                      networks=(ipaddress.IPv4Network("10.252.0.0/16"),), busy_ports=frozenset({17015}))
    assert slots.conflicts(s, busy) == [
        "link slt7-n1 exists", "link sltest7 exists", "namespace slt7-n1 exists",
        "10.252.7.0/24 is routed (10.252.0.0/16)", "port 17015 in use"]


@pytest.fixture
def held() -> Iterator[slots.Claim]:
    """A slot claimed machine-wide, so that tests with their own lock directory may use it without harm."""
    claim = slots.allocate()
    yield claim
    claim.release()


def hold_in_child(lock_dir: Path, number: int) -> subprocess.Popen:
    """Another process (another test run) holding slot number until its stdin closes."""
    code = ("import sys; from pathlib import Path; from localcluster import slots; "
            f"c = slots.try_claim({number}, Path({str(lock_dir)!r})); print(c.slot.number, flush=True); "
            "sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == str(number)
    return child


def test_a_slot_another_run_holds_is_skipped_until_that_run_ends(held, tmp_path):
    n = held.slot.number
    first = slots.allocate(lock_dir=tmp_path, start=n)
    second = slots.allocate(lock_dir=tmp_path, start=n)  # a second claim in one process is refused too
    assert first.slot.number == n and second.slot.number != n
    first.release()
    child = hold_in_child(tmp_path, n)
    try:
        third = slots.allocate(lock_dir=tmp_path, start=n)
        assert third.slot.number != n
    finally:
        child.communicate("")  # the other run ends: its lock goes with it
    fourth = slots.allocate(lock_dir=tmp_path, start=n)
    assert fourth.slot.number == n
    for claim in (second, third, fourth):
        claim.release()


def test_a_dead_runs_leftovers_are_brought_down_by_the_next_claimant(held, tmp_path):
    n = held.slot.number
    claim = slots.allocate(lock_dir=tmp_path, start=n)
    spec = claim.spec(tmp_path / "root", "h", nodes=1)
    subprocess.run(["ip", "netns", "add", spec.netns("n1")], check=True)  # the run dies with its node left
    claim.release()
    try:
        other = slots.allocate(lock_dir=tmp_path, start=n)
        assert other.slot.number != n  # without reclaim: skipped
        again = slots.allocate(lock_dir=tmp_path, start=n, reclaim=cluster.down)
        assert again.slot.number == n and network.namespaces(spec) == []
        other.release()
        again.release()
    finally:
        cluster.down(spec)


@pytest.mark.cluster
def test_the_running_clusters_slot_is_seen_as_taken(slurm_cluster):
    spec = slurm_cluster.spec
    slot = next(s for s in EVERY if s.bridge == spec.bridge)
    found = slots.conflicts(slot, slots.observe(slot))
    assert f"link {spec.bridge} exists" in found and f"namespace {spec.netns('n1')} exists" in found
    assert f"{spec.subnet} is routed ({spec.subnet})" in found and f"port {spec.ctld_port} in use" in found
