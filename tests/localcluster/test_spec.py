"""The cluster's shape and configuration files, without a cluster."""

from pathlib import Path

import pytest

from localcluster import network
from localcluster.spec import ClusterSpec, SpecError, cgroup_conf, client_env, slurm_conf


def make(**kw) -> ClusterSpec:
    return ClusterSpec(root=Path("/srv/c"), host="login", **kw)


def test_slurm_conf_has_what_namespaced_nodes_need():
    conf = slurm_conf(make(nodes=3, cpus=4))
    for line in ("ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
                 "SlurmdParameters=config_overrides", "SlurmctldHost=login(10.250.0.1)",
                 "SlurmdSpoolDir=/srv/c/nodes/%n/spool", "TmpFS=/srv/c/nodes/%n/tmp",
                 "AuthInfo=socket=/srv/c/munge/munge.socket.2"):
        assert line in conf.splitlines()
    nodes = [line for line in conf.splitlines() if line.startswith("NodeName=")]
    assert nodes == [f"NodeName=n{i} NodeAddr=10.250.0.{10 + i} NodeHostname=n{i} CPUs=4 State=UNKNOWN"
                     for i in (1, 2, 3)]
    assert "/etc/slurm" not in conf


def test_cgroup_conf_uses_v1():
    assert "CgroupPlugin=cgroup/v1" in cgroup_conf().splitlines()


def test_client_env_points_at_the_cluster_and_fixes_pmix():
    env = client_env(make())
    assert env["SLURM_CONF"] == "/srv/c/etc/slurm.conf"
    assert env["PMIX_MCA_gds"] == "hash"
    assert env["LOCAL_CLUSTER_ADDRESS"] == "10.250.0.1"


@pytest.mark.parametrize("kw, word", [
    ({"nodes": 0}, "--nodes"), ({"cpus": 0}, "--cpus"), ({"subnet": "10.0.0.0/29"}, "too small"),
    ({"subnet": "x"}, "--subnet"), ({"bridge": "a" * 16}, "--bridge"), ({"prefix": "much-too-long"}, "--prefix"),
    ({"ctld_port": 80}, "--ctld-port"), ({"ctld_port": 20000, "slurmd_port": 20000}, "differ"),
])
def test_bad_shapes_are_refused(kw, word):
    with pytest.raises(SpecError, match=word):
        make(**kw)


def test_spec_round_trips_through_json():
    spec = make(nodes=7, bridge="br9", prefix="x-")
    assert ClusterSpec.from_json(spec.to_json()) == spec


def test_network_commands_give_each_node_its_namespace_and_address():
    spec = make(nodes=2, prefix="p-")
    host = network.host_commands(spec)
    assert ["ip", "netns", "add", "p-n2"] in host
    assert ["ip", "link", "set", "p-n1", "master", "slbr0"] in host
    assert ["ip", "addr", "add", "10.250.0.12/24", "dev", "eth0"] in network.node_commands(spec, 2)
    assert network.batch([["ip", "link", "set", "lo", "up"]]) == "link set lo up\n"


def test_shared_paths_under_tmp_stay_visible_on_nodes():
    from localcluster.spec import shared_under_tmp

    assert shared_under_tmp([Path("/tmp/ci/.state/c"), Path("/tmp/ci"), Path("/work/p")]) == ["/tmp/ci"]
    assert shared_under_tmp([Path("/work/p")]) == []
