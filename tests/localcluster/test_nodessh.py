"""scripts/node-ssh (FLUX_SSH) reaches a node through its real sshd, with ssh's command line as Flux writes it."""

import os
import subprocess

import pytest

from ..conftest import PROJECT

NODE_SSH = str(PROJECT / "scripts" / "node-ssh")


@pytest.mark.cluster
def test_it_enters_the_node_through_its_sshd(slurm_cluster):
    assert slurm_cluster.env["FLUX_SSH"] == NODE_SSH
    cmd = [NODE_SSH, "-p", "22", "root@n2", "hostname; ip -4 -o addr show eth0"]
    out = subprocess.run(cmd, env=slurm_cluster.env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "n2" and f"{slurm_cluster.spec.node_address(2)}/24" in out
    bad = subprocess.run([NODE_SSH, "n9", "true"], env=slurm_cluster.env, capture_output=True, text=True)
    assert bad.returncode == 255


def test_without_the_cluster_s_env_it_says_what_to_run():
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_CLUSTER_ROOT"}
    proc = subprocess.run([NODE_SSH, "n1", "true"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "local-cluster.sh env" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
