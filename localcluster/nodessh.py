"""`ssh NODE CMD` for the local cluster: run a command inside a node's namespaces, as ssh would.

Tools that reach compute nodes over ssh (Flux's ssh:// connector, which Parsl's FluxExecutor
uses) get this through FLUX_SSH; there is no sshd in the nodes. It enters slurmd's network,
UTS and mount namespaces, so the node's hostname, address and private /tmp are what it sees.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .procs import alive, read_pid
from .spec import DEFAULT_ROOT, ClusterSpec

# ssh options that take a value (OpenSSH's getopt string).
VALUED = set("BbcDEeFIiJLlmOoPpQRSWw")


def split(argv: Sequence[str]) -> tuple[str, list[str]]:
    """ssh's command line -> (node, remote command words); options are accepted and ignored."""
    args = list(argv)
    while args and args[0].startswith("-") and args[0] != "--":
        opt = args.pop(0)
        if opt[-1] in VALUED and len(opt) == 2:
            args and args.pop(0)
    if args and args[0] == "--":
        args.pop(0)
    if not args:
        raise ValueError("no node given")
    host = args.pop(0).rsplit("@", 1)[-1]
    return host, args


def node_pid(root: Path, node: str) -> int:
    """The pid of node's slurmd, whose namespaces are the node's, in the cluster recorded at root."""
    spec = ClusterSpec.recorded(root)
    pid = read_pid(spec.slurmd_pid_file(node)) if spec and node in spec.node_names else None
    if pid is None or not alive(pid):
        raise ValueError(f"node {node} is not running in the cluster at {root}")
    return pid


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print("usage: node-ssh [ssh options] [user@]NODE [COMMAND...]\n" + (__doc__ or "").split("\n\n")[0])
        return 0
    root = Path(os.environ.get("LOCAL_CLUSTER_ROOT", DEFAULT_ROOT))
    try:
        node, words = split(argv)
        pid = node_pid(root, node)
    except ValueError as err:
        print(f"node-ssh: {err}", file=sys.stderr)
        return 255
    command = " ".join(words) if words else "exec ${SHELL:-/bin/sh} -l"
    os.execvp("nsenter", ["nsenter", "-t", str(pid), "-n", "-u", "-m", "--", "/bin/sh", "-c", command])


if __name__ == "__main__":
    sys.exit(main())
