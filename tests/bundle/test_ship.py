"""Ship over ssh to a node of the local cluster (a real sshd; the node's /tmp is private, so it stands in
for a new cluster): the program runs there, a change sends only its package, a killed ship leaves the
target working and the next ship finishes; pull reads a bundle from a host as one stream; a target whose
python3 is RHEL 8's 3.6 or RHEL 9's 3.9 deploys, an older one is refused in one line."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bundle.conftest import PROG, PROJECT, build_tree, key, pack
from tests.pythons import OLDEST_LOGIN, OLDEST_TARGET, TOO_OLD_TARGET, interpreter

pytestmark = pytest.mark.cluster


def bundle_cli(env: dict[str, str], *args: str, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bundle", *args], cwd=PROJECT, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(PROJECT)}, timeout=300, **kw)  # type: ignore[call-overload]


def on_node(env: dict[str, str], node: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run([*shlex.split(env["BUNDLE_SSH"]), node, command], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def tree() -> Iterator[Path]:
    """A store built under a /tmp path of its own, which no node has (their /tmp is private)."""
    top = Path("/tmp") / f"ship-test-{uuid.uuid4().hex[:8]}"
    root = build_tree(top / "root")
    (root / key("plain") / "etc/data").write_bytes(os.urandom(3 << 20))
    (root / key("pytool") / "data").write_bytes(os.urandom(1 << 20))
    yield root
    shutil.rmtree(top, ignore_errors=True)


def change_pytool(root: Path, size: int, text: str) -> None:
    (root / key("pytool") / "data").write_bytes(os.urandom(size))
    script = root / key("pytool") / "bin/pytool"
    script.write_text(f"#!{sys.executable}\nprint({text!r})\n")


def test_ship_runs_there_and_sends_only_what_changed(slurm_cluster, tree, tmp_path):
    env = slurm_cluster.env
    first = pack(tree, tmp_path / "a/")
    out = bundle_cli(env, "redeploy", str(first), "--to", f"n2:{tree}", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["host"] == "n2" and report["target"] == str(tree) and len(report["sent_paths"]) == 4
    assert report["sent_bytes"] > 4 << 20  # 4 MB of random data crossed
    ran = on_node(env, "n2", f"{tree / key('hello')}/bin/hello; {tree / key('pytool')}/bin/pytool; hostname")
    assert ran.stdout.split("\n")[:3] == ["hello from libgreet", "pytool ok", "n2"], ran.stderr
    assert not (tree / ".bundle").exists()  # the host's tree is untouched: the target was the node

    change_pytool(tree, 1 << 20, "pytool v2")
    second = pack(tree, tmp_path / "b/")
    out = bundle_cli(env, "redeploy", str(second), "--to", f"n2:{tree}", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    share = report["sent_store_bytes"]
    assert report["sent_paths"] == [key("pytool")] and report["written_paths"] == [key("pytool")]
    assert (1 << 20) < share < (1 << 20) + 4096  # the package's files, not the bundle's 4+ MB
    assert report["sent_data_bytes"] < 1.05 * share
    assert report["sent_bytes"] < share + 200_000 < second.stat().st_size  # + the code and manifest
    ran = on_node(env, "n2", f"{tree / key('pytool')}/bin/pytool")
    assert ran.stdout == "pytool v2\n"

    again = bundle_cli(env, "redeploy", str(second), "--to", f"n2:{tree}")
    assert again.returncode == 0 and "nothing to write" in again.stdout and "sent 0 store paths" in again.stdout


THROTTLE = textwrap.dedent("""\
    import subprocess, sys, time
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE)
    while chunk := sys.stdin.buffer.read1(32768):
        child.stdin.write(chunk)
        child.stdin.flush()
        time.sleep(0.02)
    child.stdin.close()
    sys.exit(child.wait())
""")


def test_a_ship_killed_mid_transfer_leaves_the_target_working(slurm_cluster, tree, tmp_path):
    env = slurm_cluster.env
    first = pack(tree, tmp_path / "a/")
    assert bundle_cli(env, "redeploy", str(first), "--to", f"n3:{tree}", "-q").returncode == 0
    change_pytool(tree, 8 << 20, "pytool v2")
    second = pack(tree, tmp_path / "b/")
    slow = tmp_path / "slow.py"  # about 1.5 MB/s: the 8 MB change takes seconds to cross
    slow.write_text(THROTTLE)
    ssh = f"{sys.executable} {slow} {env['BUNDLE_SSH']}"
    ship = subprocess.Popen([sys.executable, "-m", "bundle", "redeploy", str(second), "--to", f"n3:{tree}",
                             "--ssh", ssh, "-q"], cwd=PROJECT, env={**env, "PYTHONPATH": str(PROJECT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while "bundle-staging" not in on_node(env, "n3", f"ls -a {tree / os.path.dirname(key('pytool'))}").stdout:
        assert ship.poll() is None and time.monotonic() < deadline, "the ship ended before it was staging"
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(ship.pid, signal.SIGKILL)
    ship.wait()
    ran = on_node(env, "n3", f"{tree / key('pytool')}/bin/pytool; {tree / key('hello')}/bin/hello")
    assert ran.stdout == "pytool ok\nhello from libgreet\n", ran.stderr  # as it was

    out = bundle_cli(env, "redeploy", str(second), "--to", f"n3:{tree}", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sent_paths"] == [key("pytool")]
    ran = on_node(env, "n3", f"{tree / key('pytool')}/bin/pytool; ls -a {tree / os.path.dirname(key('pytool'))}")
    assert ran.stdout.startswith("pytool v2\n") and "bundle-staging" not in ran.stdout


def test_pull_reads_a_bundle_from_a_host(slurm_cluster, tree, tmp_path):
    env = slurm_cluster.env
    bundle = pack(tree, tmp_path / "a/")
    shutil.rmtree(tree / "opt")
    holder = f"/tmp/pull-{uuid.uuid4().hex[:6]}"  # the node's /tmp: only there does the bundle exist
    copy = subprocess.run([*shlex.split(env["BUNDLE_SSH"]), "n4", f"mkdir -p {holder} && cat > {holder}/{bundle.name}"],
                          stdin=open(bundle, "rb"), capture_output=True, timeout=60)
    assert copy.returncode == 0, copy.stderr
    out = bundle_cli(env, "redeploy", f"n4:{holder}/{bundle.name}", "--prefix", str(tree))
    assert out.returncode == 0, out.stderr
    hello = subprocess.run([str(tree / key("hello") / "bin/hello")], capture_output=True, text=True)
    assert hello.stdout == "hello from libgreet\n"
    missing = bundle_cli(env, "redeploy", f"n4:{holder}/nope-{'0' * 32}.tar.zst", "--prefix", str(tree))
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1 and "n4: " in missing.stderr


def test_errors_are_one_line(slurm_cluster, tree, tmp_path):
    env = slurm_cluster.env
    bundle = pack(tree, tmp_path / "a/")
    cases = {
        "host unreachable": ("--to", f"n4:{tree}", "--ssh", f"{env['BUNDLE_SSH']} -o ConnectTimeout=2 -p 2"),
        "authentication refused": ("--to", f"n1:{tree}", "--ssh",
                                   f"{env['BUNDLE_SSH']} -o IdentityFile={tmp_path}/none -o IdentitiesOnly=yes "
                                   "-o IdentityAgent=none -F /dev/null -o StrictHostKeyChecking=no "
                                   f"-o UserKnownHostsFile={tmp_path}/kh -o BatchMode=yes "
                                   f"-l root {slurm_cluster.spec.node_address(1)}"),
        "no python3 there": ("--to", f"n1:{tree}", "--ssh",  # the remote command run with a PATH lacking python3
                             shlex.join(["sh", "-c", f'exec {env["BUNDLE_SSH"]} "$1" "PATH=/nonexistent; $2"', "sh"])),
    }
    for what, args in cases.items():
        out = bundle_cli(env, "redeploy", str(bundle), *args, "-q")
        assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, (what, out.stderr)
        assert what in out.stderr, (what, out.stderr)
    assert bundle_cli(env, "redeploy", str(bundle), "--to", f"n1:{tree}", "-q").returncode == 0
    holder = subprocess.Popen([*shlex.split(env["BUNDLE_SSH"]), "n1",
                               f"flock {tree}/.bundle/lock sh -c 'echo held; sleep 4'"], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    locked = bundle_cli(env, "redeploy", str(bundle), "--to", f"n1:{tree}", "-q")
    holder.wait()
    assert locked.returncode == 1 and locked.stderr == f"{PROG}: n1: {tree}: another redeploy holds the lock " \
                                                         "(use --wait to queue)\n"
    bad = bundle_cli(env, "redeploy", str(bundle), "--to", "n1:relative/path")
    assert bad.returncode == 1 and "expected [USER@]HOST:/ABSOLUTE/PREFIX" in bad.stderr


@pytest.mark.parametrize("version", [OLDEST_TARGET, OLDEST_LOGIN])
def test_a_target_with_an_old_python_deploys_a_tree_that_verifies(slurm_cluster, tree, tmp_path, version):
    env = slurm_cluster.env
    python = str(interpreter(version))
    bundle = pack(tree, tmp_path / "a/")
    out = bundle_cli(env, "redeploy", str(bundle), "--to", f"n2:{tree}", "--remote-python", python, "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["sent_paths"]) == 4
    ran = on_node(env, "n2", f"{tree / key('hello')}/bin/hello; {python} -c 'import sys; print(sys.version_info[:2])'")
    assert ran.stdout.splitlines() == ["hello from libgreet", str(tuple(int(x) for x in version.split(".")[:2]))]
    verified = on_node(env, "n2", f"cd {PROJECT} && {sys.executable} -m bundle verify {tree} --json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["problems"] == [], verified.stderr
    again = bundle_cli(env, "redeploy", str(bundle), "--to", f"n2:{tree}", "--remote-python", python, "-q")
    assert again.returncode == 0, again.stderr


def test_a_target_python_older_than_3_6_is_refused_in_one_line(slurm_cluster, tree, tmp_path):
    env = slurm_cluster.env
    python = str(interpreter(TOO_OLD_TARGET))
    bundle = pack(tree, tmp_path / "a/")
    out = bundle_cli(env, "redeploy", str(bundle), "--to", f"n3:{tree}", "--remote-python", python, "-q")
    assert out.returncode == 1 and out.stderr == (f"{PROG}: n3: {python} there is Python {TOO_OLD_TARGET}; a ship's "
                                                  "target needs Python 3.6 or newer\n")
    assert on_node(env, "n3", f"test -e {tree}").returncode == 1  # nothing was made there
