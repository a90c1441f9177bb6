"""node-ssh reads ssh's command line the way Flux's ssh connector writes it."""

import subprocess

import pytest

from localcluster import nodessh

from ..conftest import PROJECT


def test_options_are_skipped_and_the_user_dropped():
    assert nodessh.split(["-p", "22", "-oBatchMode=yes", "root@n3", "flux", "relay", "/tmp/x"]) == (
        "n3", ["flux", "relay", "/tmp/x"])
    assert nodessh.split(["n1"]) == ("n1", [])
    with pytest.raises(ValueError, match="no node"):
        nodessh.split(["-p", "22"])


@pytest.mark.cluster
def test_it_enters_the_node(slurm_cluster):
    cmd = [str(PROJECT / "scripts" / "node-ssh"), "-p", "22", "root@n2", "hostname; ip -4 -o addr show eth0"]
    out = subprocess.run(cmd, env=slurm_cluster.env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "n2" and f"{slurm_cluster.spec.node_address(2)}/24" in out
    bad = subprocess.run([str(PROJECT / "scripts" / "node-ssh"), "n9", "true"], env=slurm_cluster.env,
                         capture_output=True, text=True)
    assert bad.returncode == 255 and "node n9 is not running" in bad.stderr
