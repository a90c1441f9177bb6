"""Session fixtures: one real local Slurm cluster for every test that asks for it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster import cluster, slots
from localcluster.spec import ClusterSpec, client_env

PROJECT = Path(__file__).resolve().parent.parent
STATE = PROJECT / ".state"


# A shell without job control starts `scripts/test.sh &` with SIGINT ignored, and an ignored signal stays
# ignored across exec: the runs the tests interrupt (as a user's Ctrl-C would) must get it as usual.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_claims: dict[str, slots.Claim] = {}


def spec_for(name: str, index: int = 0, *, nodes: int = 4, cpus: int = 2) -> ClusterSpec:
    """A cluster of this run beside every other on the machine (the user's, other clones' test runs).

    Its bridge, subnet, namespace prefix and ports are a slot claimed for this run, free when claimed
    and held until the run ends (localcluster.slots); its root is .state/<name>-<slot>. One name gets
    one slot per run. index is ignored (clusters used to be told apart by it).
    """
    claim = _claims.get(name)
    if claim is None:
        try:
            claim = _claims[name] = slots.allocate(reclaim=cluster.down)
        except slots.SlotError as err:
            pytest.fail(f"no network for a test cluster: {err}")
    return claim.spec(STATE / f"{name}-{claim.slot.number}", socket.gethostname().split(".")[0],
                      nodes=nodes, cpus=cpus)


@dataclass
class Cluster:
    spec: ClusterSpec
    env: dict[str, str]


@contextlib.contextmanager
def running(spec: ClusterSpec) -> Iterator[Cluster]:
    """The cluster up for the block, and down after it, also when tests fail."""
    try:
        cluster.up(spec)
    except cluster.ClusterError as err:
        pytest.fail(f"local cluster did not come up: {err}")
    try:
        yield Cluster(spec, {**os.environ, **client_env(spec)})
    finally:
        cluster.down(spec)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    """4 nodes x 2 CPUs, up once for the session."""
    with running(spec_for("test-cluster", 1)) as up:
        yield up


@pytest.fixture
def shared_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A directory every node sees (nodes have a private /tmp, like real compute nodes)."""
    name = re.sub(r"[^\w.-]", "-", request.node.name[:60])  # run.py refuses shell characters in paths
    path = STATE / "test-shared" / f"{name}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)
