"""Every node runs a real sshd (Debian's openssh-server) on its own address, with the cluster's keys."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from localcluster.spec import PROJECT


def ssh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*shlex.split(env["BUNDLE_SSH"]), *args], env=env, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.cluster
def test_ssh_reaches_each_node_in_its_namespaces(slurm_cluster):
    env, spec = slurm_cluster.env, slurm_cluster.spec
    marker = f"/tmp/sshd-test-{spec.prefix}"
    for i, node in enumerate(spec.node_names, start=1):
        out = ssh(env, node, f"hostname; ip -4 -o addr show eth0; touch {marker}-{node}; ls /tmp")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == node and f"{spec.node_address(i)}/24" in lines[1]
        assert f"sshd-test-{spec.prefix}-{node}" in out.stdout  # the node's private /tmp
        assert not any(f"sshd-test-{spec.prefix}-{other}" in out.stdout for other in spec.node_names if other != node)
    by_address = ssh(env, spec.node_address(1), "hostname")
    assert by_address.stdout.strip() == "n1"


@pytest.mark.cluster
def test_a_foreign_key_is_refused(slurm_cluster, tmp_path):
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    out = subprocess.run(["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                          "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={tmp_path / 'known'}",
                          f"root@{slurm_cluster.spec.node_address(1)}", "true"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 255 and "Permission denied" in out.stderr


@pytest.mark.cluster
def test_env_defines_ssh_for_the_nodes(slurm_cluster):
    spec = slurm_cluster.spec
    script = f'eval "$({shlex.quote(str(PROJECT / "scripts" / "local-cluster.sh"))} env ' \
             f'--root {shlex.quote(str(spec.root))} | grep -v PATH=)"; ssh n3 hostname'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "n3", out.stderr
